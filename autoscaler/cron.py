"""Five-field crontab expressions: parse them and find their fire times, the way cron does.

Pure (no clock, no I/O): the caller passes the instant to search from. Both the policy layer
(to validate `schedules[].cron`) and the decision core (to open schedule windows) import this
module, so what validates is exactly what runs, and the policy layer needs nothing of the core.

Cron's rules, as in Vixie cron (cron(8), crontab(5)) and KEDA's cron scaler:

- Weekdays are numbered 0-7 with 0 and 7 = Sunday (names `mon`..`sun` work too).
- Day of month and day of week: when both are restricted (neither starts with `*`), a day
  matches when EITHER matches (`0 9 13 * 5` fires on every 13th and every Friday); when one
  starts with `*`, only the other one counts.
- Daylight saving time (cron(8): "if the time has moved forwards, those jobs which would have
  run in the time that was skipped will be run soon after the change. Conversely, if the time
  has moved backwards ..., those jobs that fall into the repeated time will not be re-run";
  only jobs at a fixed time, without `*` in the minute or hour field, are affected):
  a fixed-time fire that the clock skips fires at the change itself, and a fixed-time fire in
  the repeated hour fires once, the first time. An expression with `*` in the minute or hour
  field fires at every real instant whose wall-clock time matches.

Fire-time search is APScheduler's `CronTrigger` (date arithmetic only, no scheduler), given
weekday names so that crontab numbering holds. The two dicts below are memos keyed by strings
and numbers, never by object identity: a hit returns exactly what recomputing would.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")

_TRIGGERS: dict[tuple[str, str], tuple[CronTrigger, ...]] = {}
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
            first, last = _day_number(lo, part), _day_number(hi, part)
        else:
            first = _day_number(body, part)
            last = 6 if step_text else first
        if not (0 <= first <= 7 and 0 <= last <= 7) or first > last or step < 1:
            raise ValueError(
                f"day of week {part!r}: expected days 0-7 (0 and 7 = Sunday) or sun-sat, "
                "a range from low to high"
            )
        out.extend(_WEEKDAYS[d] for d in range(first, last + 1, step))
    return ",".join(dict.fromkeys(out))


def _day_number(text: str, part: str) -> int:
    """A crontab day: 0-7 or a name (sun = 0, as crontab numbers them; APScheduler numbers its
    names from mon = 0, so a named range like `sun-sat` is read here, not passed on)."""
    if text.isdigit():
        return int(text)
    number = _DAY_NUMBERS.get(text.lower())
    if number is None:
        raise ValueError(f"day of week {part!r}: {text!r} is not a day (0-7 or sun-sat)")
    return number


_DAY_NUMBERS = {name: number for number, name in enumerate(_WEEKDAYS[:7])}


def _restricted(field: str) -> bool:
    """Vixie cron's test: a day field is unrestricted when it starts with `*` (or `?`)."""
    return not field.startswith(("*", "?"))


def triggers(cron: str, timezone: str) -> tuple[CronTrigger, ...]:
    """The CronTriggers whose union is `cron` in `timezone` (memoized by the strings).

    One trigger, or two when both day fields are restricted: one for the days of the month,
    one for the days of the week, since cron fires on either (APScheduler alone needs both).
    Raises ValueError for an expression cron would refuse.
    """
    key = (cron, timezone)
    found = _TRIGGERS.get(key)
    if found is None:
        fields = cron.split()
        if len(fields) != 5:
            hint = " (macros like @daily are not supported)" if cron.startswith("@") else ""
            raise ValueError(f"cron {cron!r}: expected 5 fields, got {len(fields)}{hint}")
        minute, hour, day, month, weekday = fields
        for name, field in zip(_FIELD_NAMES, fields, strict=True):
            _check_steps(name, field)
        zone = ZoneInfo(timezone)
        dow = crontab_day_of_week(weekday)

        def one(day: str, dow: str) -> CronTrigger:
            return CronTrigger(
                minute=minute, hour=hour, day=day, month=month, day_of_week=dow, timezone=zone
            )

        if _restricted(day) and _restricted(weekday):
            found = (one(day, "*"), one("*", dow))
        else:
            found = (one(day, dow),)
        if len(_TRIGGERS) >= _MEMO_LIMIT:
            _TRIGGERS.clear()
        _TRIGGERS[key] = found
    return found


_FIELD_NAMES = ("minute", "hour", "day", "month", "day of week")


def _check_steps(name: str, field: str) -> None:
    """Every `/step` of a field is a whole number >= 1, as cron requires: APScheduler let a
    month step like `jan-feb/x` through, and read `1-5/x` with a bare int() error."""
    for part in field.split(","):
        _, slash, step = part.partition("/")
        if slash and not (step.isdigit() and int(step) >= 1):
            raise ValueError(f"{name} {part!r}: the step after '/' must be a whole number >= 1")


def _fixed_time(cron: str) -> bool:
    minute, hour = cron.split()[:2]
    return "*" not in minute and "*" not in hour


def next_fire(cron: str, timezone: str, start: float) -> float:
    """Epoch seconds of the first fire time >= `start` (inf if none), computed afresh."""
    zone = ZoneInfo(timezone)
    triggers(cron, timezone)  # a bad expression fails here with its reason, before it is read
    fixed = _fixed_time(cron)
    at = start
    if fixed and _offset(start - 1, zone) < _offset(start, zone):
        # `start` is a forward change itself, where the times it skipped run: search from
        # just before it so those are seen (no whole-minute fire is lost by that second).
        at = start - 1
    while True:
        after = datetime.fromtimestamp(at, zone)
        found = [
            fire
            for t in triggers(cron, timezone)
            if (fire := t.get_next_fire_time(None, after)) is not None
        ]
        if not found:
            return math.inf
        fire = min(found)
        wall = fire.replace(tzinfo=None, fold=0)
        if datetime.fromtimestamp(fire.timestamp(), zone).replace(tzinfo=None) != wall:
            # A wall time the clock skipped (APScheduler reads it at the old offset, i.e.
            # shifted forward by the gap). A fixed time runs at the change itself; a
            # wildcard one just does not run for the skipped times.
            if fixed:
                return max(start, _change_before(fire.timestamp(), zone))
        elif not (
            fixed and fire.fold == 1 and wall.replace(tzinfo=zone).utcoffset() != fire.utcoffset()
        ):
            return fire.timestamp()
        # Skipped wildcard time, or a fixed time's second pass through a repeated hour.
        at = fire.timestamp() + 1


def _offset(instant: float, zone: ZoneInfo) -> timedelta:
    return datetime.fromtimestamp(instant, zone).utcoffset() or timedelta()


def _change_before(instant: float, zone: ZoneInfo) -> float:
    """The UTC-offset change within the day before `instant`: the first instant at the
    offset `instant` has (`instant` itself when there was none)."""
    offset = datetime.fromtimestamp(instant, zone).utcoffset()
    lo, hi = instant - 86400.0, instant
    if datetime.fromtimestamp(lo, zone).utcoffset() == offset:
        return instant
    while hi - lo > 1.0:
        mid = math.floor((lo + hi) / 2)
        if datetime.fromtimestamp(mid, zone).utcoffset() == offset:
            hi = mid
        else:
            lo = mid
    return hi


def first_fire_at_or_after(cron: str, timezone: str, start: float) -> float:
    """Epoch seconds of the first fire time >= `start` (inf if the cron never fires again)."""
    key = (cron, timezone)
    memo = _NEXT_FIRE.get(key)
    if memo is not None and memo[0] <= start <= memo[1]:
        return memo[1]
    fire = next_fire(cron, timezone, start)
    if len(_NEXT_FIRE) >= _MEMO_LIMIT:
        _NEXT_FIRE.clear()
    _NEXT_FIRE[key] = (start, fire)
    return fire
