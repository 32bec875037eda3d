"""Schedule windows: which `schedules:` entries are active at a given instant.

A window opens at each fire time of its five-field crontab (in its timezone) and stays open
for `duration`; it is active at `now` when a fire time lies in (now - duration, now]. Fire
times, with cron's rules (crontab weekday numbers, day-of-month OR day-of-week, daylight saving
changes), come from `autoscaler.cron`, which the policy layer validates with too.
"""

from __future__ import annotations

import math

from autoscaler.cron import crontab_day_of_week, first_fire_at_or_after
from autoscaler.policy.model import Schedule

__all__ = ["active_schedules", "crontab_day_of_week", "first_fire_at_or_after", "is_active"]


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
