"""autoscaler.cron against a table of expressions and the fire times cron would give.

The expected times were written by reading cron(8) and crontab(5) (Vixie cron, as Debian
ships it), not by running the code: weekdays 0-7 with 0 and 7 = Sunday; when day-of-month and
day-of-week are both restricted (neither starts with `*`) either one matching is enough;
a fixed-time job whose time the clock skips runs at the change, one whose time the clock
repeats runs once; a job with `*` in the minute or hour field runs at every real instant that
matches. Calendar facts used: 2026-01-01 is a Thursday; daylight saving time in 2026 starts
on Mar 8 (US, 02:00 -> 03:00) and Mar 29 (EU, 01:00 UTC), ends on Nov 1 (US, 02:00 -> 01:00)
and Oct 25 (EU); Lord Howe Island moves by 30 minutes (Apr 5: 02:00 -> 01:30, Oct 4: 02:00 ->
02:30).
"""

from __future__ import annotations

import math
from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autoscaler import cron
from autoscaler.core.schedule import is_active
from autoscaler.policy.model import Schedule

NEVER = "never"

# (expression, time zone, search from (local ISO), the next fire times (ISO with offset))
TABLE: list[tuple[str, str, str, list[str]]] = [
    # day of month OR day of week, when both are restricted
    ("0 9 13 * 5", "UTC", "2026-01-01T00:00", [
        "2026-01-02T09:00:00+00:00", "2026-01-09T09:00:00+00:00",
        "2026-01-13T09:00:00+00:00", "2026-01-16T09:00:00+00:00",
    ]),
    ("0 9 1 * 0", "UTC", "2026-01-28T00:00", [
        "2026-02-01T09:00:00+00:00", "2026-02-08T09:00:00+00:00", "2026-02-15T09:00:00+00:00",
    ]),
    ("0 9 1 * 7", "UTC", "2026-01-28T00:00", [  # 7 is Sunday too
        "2026-02-01T09:00:00+00:00", "2026-02-08T09:00:00+00:00", "2026-02-15T09:00:00+00:00",
    ]),
    ("0 0 29 2 1", "UTC", "2026-01-01T00:00", [  # February's Mondays (no 29th in 2026)
        "2026-02-02T00:00:00+00:00", "2026-02-09T00:00:00+00:00",
        "2026-02-16T00:00:00+00:00", "2026-02-23T00:00:00+00:00", "2027-02-01T00:00:00+00:00",
    ]),
    ("0 12 1,15 * mon", "UTC", "2026-01-01T00:00", [
        "2026-01-01T12:00:00+00:00", "2026-01-05T12:00:00+00:00",
        "2026-01-12T12:00:00+00:00", "2026-01-15T12:00:00+00:00",
    ]),
    # one of them starts with `*`: only the other counts (AND with an unrestricted field)
    ("0 9 */2 * 5", "UTC", "2026-01-01T00:00", [  # Fridays on odd days
        "2026-01-09T09:00:00+00:00", "2026-01-23T09:00:00+00:00", "2026-02-13T09:00:00+00:00",
    ]),
    ("0 9 13 * *", "UTC", "2026-01-01T00:00", [
        "2026-01-13T09:00:00+00:00", "2026-02-13T09:00:00+00:00", "2026-03-13T09:00:00+00:00",
    ]),
    ("0 9 * * 5", "UTC", "2026-01-01T00:00", [
        "2026-01-02T09:00:00+00:00", "2026-01-09T09:00:00+00:00", "2026-01-16T09:00:00+00:00",
    ]),
    ("30 8 * * 1-5", "Asia/Kolkata", "2026-01-03T00:00", [  # Saturday: next is Monday
        "2026-01-05T08:30:00+05:30", "2026-01-06T08:30:00+05:30", "2026-01-07T08:30:00+05:30",
    ]),
    # day names as crontab reads them: sun is 0, so sun-sat is every day and sat-sun is empty
    ("0 8 * * sun-sat", "UTC", "2026-01-03T00:00", [  # Saturday, then Sunday
        "2026-01-03T08:00:00+00:00", "2026-01-04T08:00:00+00:00", "2026-01-05T08:00:00+00:00",
    ]),
    ("0 8 * * Sun,wed-FRI", "UTC", "2026-01-03T00:00", [
        "2026-01-04T08:00:00+00:00", "2026-01-07T08:00:00+00:00", "2026-01-08T08:00:00+00:00",
    ]),
    ("0 8 * * mon-fri/2", "UTC", "2026-01-03T00:00", [  # Monday, Wednesday, Friday
        "2026-01-05T08:00:00+00:00", "2026-01-07T08:00:00+00:00", "2026-01-09T08:00:00+00:00",
    ]),
    ("0 0 29 2 *", "UTC", "2026-01-01T00:00", ["2028-02-29T00:00:00+00:00"]),
    ("0 0 31 2 *", "UTC", "2026-01-01T00:00", [NEVER]),
    ("0 0 30 2 *", "UTC", "2026-01-01T00:00", [NEVER]),
    # daylight saving time: a fixed time the clock skips runs at the change ...
    ("30 2 * * *", "America/New_York", "2026-03-07T12:00", [
        "2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00",
    ]),
    ("30 1 * * *", "Europe/London", "2026-03-28T12:00", [
        "2026-03-29T02:00:00+01:00", "2026-03-30T01:30:00+01:00",
    ]),
    ("0 2 * * *", "Europe/Berlin", "2026-03-28T12:00", [
        "2026-03-29T03:00:00+02:00", "2026-03-30T02:00:00+02:00",
    ]),
    ("15 2 * * *", "Australia/Lord_Howe", "2026-10-03T12:00", [  # a 30-minute change
        "2026-10-04T02:30:00+11:00", "2026-10-05T02:15:00+11:00",
    ]),
    # ... one the clock repeats runs once ...
    ("30 1 * * *", "America/New_York", "2026-10-31T12:00", [
        "2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00",
    ]),
    ("30 1 * * 0", "Europe/London", "2026-10-24T12:00", [
        "2026-10-25T01:30:00+01:00", "2026-11-01T01:30:00+00:00",
    ]),
    ("45 1 * * *", "Australia/Lord_Howe", "2026-04-04T12:00", [
        "2026-04-05T01:45:00+11:00", "2026-04-06T01:45:00+10:30",
    ]),
    # ... and with `*` in the minute or hour field, every real instant that matches runs.
    ("0 * * * *", "America/New_York", "2026-11-01T00:30", [
        "2026-11-01T01:00:00-04:00", "2026-11-01T01:00:00-05:00", "2026-11-01T02:00:00-05:00",
    ]),
    ("*/30 * * * *", "America/New_York", "2026-03-08T01:15", [
        "2026-03-08T01:30:00-05:00", "2026-03-08T03:00:00-04:00", "2026-03-08T03:30:00-04:00",
    ]),
    ("*/30 2 * * *", "America/New_York", "2026-03-07T12:00", [  # nothing on Mar 8
        "2026-03-09T02:00:00-04:00", "2026-03-09T02:30:00-04:00",
    ]),
]  # fmt: skip


def fires(expr: str, tz: str, start: str, count: int) -> list[str]:
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(tz)
    at = datetime.fromisoformat(start).replace(tzinfo=zone).timestamp()
    out: list[str] = []
    while len(out) < count:
        fire = cron.first_fire_at_or_after(expr, tz, at)
        if fire == math.inf:
            out.append(NEVER)
            break
        out.append(datetime.fromtimestamp(fire, zone).isoformat())
        at = fire + 1
    return out


@pytest.mark.parametrize(("expr", "tz", "start", "expected"), TABLE)
def test_fire_times_follow_cron(expr: str, tz: str, start: str, expected: list[str]) -> None:
    assert fires(expr, tz, start, len(expected)) == expected
    # the uncached search agrees with the memoized one
    first = datetime.fromisoformat(start)
    assert cron.next_fire(expr, tz, first.replace(tzinfo=_zone(tz)).timestamp()) == (
        math.inf if expected == [NEVER] else datetime.fromisoformat(expected[0]).timestamp()
    )


def _zone(tz: str):  # type: ignore[no-untyped-def]
    from zoneinfo import ZoneInfo

    return ZoneInfo(tz)


def test_a_window_opens_on_either_day_field() -> None:
    """A schedule `0 9 13 * 5` for 1 h is open on Friday the 2nd and on Tuesday the 13th."""
    window = Schedule("0 9 13 * 5", 3600.0, "UTC", min=2)
    friday = datetime.fromisoformat("2026-01-02T09:30:00+00:00").timestamp()
    tuesday_13 = datetime.fromisoformat("2026-01-13T09:30:00+00:00").timestamp()
    wednesday = datetime.fromisoformat("2026-01-14T09:30:00+00:00").timestamp()
    assert is_active(window, friday) and is_active(window, tuesday_13)
    assert not is_active(window, wednesday)


@pytest.mark.parametrize(
    "expr",
    [
        "0 9 * *",
        "61 * * * *",
        "0 9 * * 8",
        "0 9 32 * *",
        "x y z a b",
        "0 9 * * sat-sun",
        "0 9 * * fry",
        "0 8 * jan-feb/x *",  # a step that is no number: APScheduler let it through
        "*/0 * * * *",
        "0 8 1-10/-2 * *",
    ],
)
def test_expressions_cron_refuses_raise(expr: str) -> None:
    with pytest.raises(ValueError):
        cron.next_fire(expr, "UTC", 0.0)


def test_a_step_that_is_no_number_is_named() -> None:
    with pytest.raises(ValueError, match=r"day of week '1-5/x': the step after '/' must be"):
        cron.triggers("0 8 * * 1-5/x", "UTC")


@given(
    st.sampled_from([row[:2] for row in TABLE]),
    st.integers(0, 3 * 365 * 86400),
)
def test_a_fire_time_is_never_before_the_search_start(row: tuple[str, str], offset: int) -> None:
    expr, tz = row
    start = datetime.fromisoformat("2025-06-01T00:00:00+00:00").timestamp() + offset
    fire = cron.next_fire(expr, tz, start)
    assert fire >= start
    if fire != math.inf:  # and nothing fires in between
        assert cron.next_fire(expr, tz, fire) == fire
