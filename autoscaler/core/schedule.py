"""Schedule windows: which `schedules:` entries are active at a given instant.

A window opens at each fire time of its five-field crontab (in its timezone) and stays open
for `duration`; it is active at `now` when a fire time lies in (now - duration, now].
Fire times come from APScheduler's `CronTrigger` (pure date arithmetic, no scheduler).

Crontab numbers the weekdays 0-7 with 0 and 7 = Sunday, but APScheduler 3's `from_crontab`
takes 0 = Monday; the day-of-week field is translated to weekday names first, so
`0 8 * * 1-5` means Monday to Friday as every cron user expects.

The two dicts below are memos keyed by strings and numbers, never by object identity: a
hit returns exactly what recomputing would, so results stay a function of the arguments.
"""

from __future__ import annotations

import math
from datetime import datetime
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from autoscaler.policy.model import Schedule

_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")

_TRIGGERS: dict[tuple[str, str], CronTrigger] = {}
# (cron, tz) -> (start, fire): the first fire time at or after `start` is `fire`; so it is
# also the first at or after any s in [start, fire].
_NEXT_FIRE: dict[tuple[str, str], tuple[float, float]] = {}
_MEMO_LIMIT = 4096


def crontab_day_of_week(field: str) -> str:
    """Translate a crontab day-of-week field (0/7 = Sunday) to APScheduler weekday names."""
    out: list[str] = []
    for part in field.split(","):
        body, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if body in ("*", "?"):
            if step == 1:
                return "*"
            first, last = 0, 6
        elif "-" in body:
            lo, hi = body.split("-", 1)
            if not (lo.isdigit() and hi.isdigit()):
                out.append(part)  # names: APScheduler already reads them the cron way
                continue
            first, last = int(lo), int(hi)
        elif body.isdigit():
            first = int(body)
            last = 6 if step_text else first
        else:
            out.append(part)
            continue
        if not (0 <= first <= 7 and 0 <= last <= 7) or first > last or step < 1:
            raise ValueError(f"day of week {part!r}: expected numbers 0-7 (0 and 7 = Sunday)")
        out.extend(_WEEKDAYS[d] for d in range(first, last + 1, step))
    return ",".join(dict.fromkeys(out))


def trigger(cron: str, timezone: str) -> CronTrigger:
    """The CronTrigger for a five-field crontab in a timezone (memoized by the strings)."""
    key = (cron, timezone)
    found = _TRIGGERS.get(key)
    if found is None:
        fields = cron.split()
        if len(fields) != 5:
            raise ValueError(f"cron {cron!r}: expected 5 fields, got {len(fields)}")
        found = CronTrigger(
            minute=fields[0],
            hour=fields[1],
            day=fields[2],
            month=fields[3],
            day_of_week=crontab_day_of_week(fields[4]),
            timezone=ZoneInfo(timezone),
        )
        if len(_TRIGGERS) >= _MEMO_LIMIT:
            _TRIGGERS.clear()
        _TRIGGERS[key] = found
    return found


def first_fire_at_or_after(cron: str, timezone: str, start: float) -> float:
    """Epoch seconds of the first fire time >= `start` (inf if the cron never fires again)."""
    key = (cron, timezone)
    memo = _NEXT_FIRE.get(key)
    if memo is not None and memo[0] <= start <= memo[1]:
        return memo[1]
    zone = ZoneInfo(timezone)
    fire_dt = trigger(cron, timezone).get_next_fire_time(None, datetime.fromtimestamp(start, zone))
    fire = math.inf if fire_dt is None else fire_dt.timestamp()
    if len(_NEXT_FIRE) >= _MEMO_LIMIT:
        _NEXT_FIRE.clear()
    _NEXT_FIRE[key] = (start, fire)
    return fire


def is_active(schedule: Schedule, now: float) -> bool:
    """True when a fire time of `schedule` lies in (now - duration, now]."""
    if schedule.duration <= 0:
        return False
    # Fire times are whole seconds, so the first one > now - duration is the first one
    # >= floor(now - duration) + 1.
    start = float(math.floor(now - schedule.duration) + 1)
    return first_fire_at_or_after(schedule.cron, schedule.timezone, start) <= now


def active_schedules(schedules: tuple[Schedule, ...], now: float) -> tuple[Schedule, ...]:
    return tuple(s for s in schedules if is_active(s, now))
