"""Clamp stage: min/max, schedule windows (crontab weekdays, timezones, window edges,
KEDA-style cron bounds) and the hourly cost cap."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autoscaler.core import reasons as R
from autoscaler.core.clamp import bounds, clamp, clamp_stage, cost_cap
from autoscaler.core.schedule import (
    crontab_day_of_week,
    first_fire_at_or_after,
    is_active,
)
from autoscaler.cron import next_fire
from autoscaler.policy.model import Cost, Schedule

from .builders import T0, context, policy, proposal, ready

IST = ZoneInfo("Asia/Kolkata")
BUSINESS = Schedule("0 8 * * 1-5", 36000.0, "Asia/Kolkata", min=2)


def at(y: int, mo: int, d: int, h: int, mi: int = 0, s: float = 0.0, tz: ZoneInfo = IST) -> float:
    return datetime(y, mo, d, h, mi, tzinfo=tz).timestamp() + s


@pytest.mark.parametrize(
    ("when", "active"),
    [
        (at(2023, 11, 20, 8, 0), True),  # Monday 08:00 IST: the fire time itself
        (at(2023, 11, 20, 17, 59), True),
        (at(2023, 11, 20, 18, 0), False),  # 08:00 + 10h: the window is (now - 10h, now]
        (at(2023, 11, 20, 18, 0, s=-0.5), True),
        (at(2023, 11, 20, 7, 59), False),
        (at(2023, 11, 17, 12, 0), True),  # Friday
        (at(2023, 11, 18, 12, 0), False),  # Saturday: crontab 1-5 is Mon-Fri, not Tue-Sat
        (at(2023, 11, 19, 12, 0), False),  # Sunday
    ],
)
def test_business_hours_window(when: float, active: bool) -> None:
    assert is_active(BUSINESS, when) is active


def test_window_spanning_midnight() -> None:
    night = Schedule("0 22 * * *", 8 * 3600.0, "UTC", max=1)
    utc = ZoneInfo("UTC")
    assert is_active(night, at(2023, 11, 20, 3, 0, tz=utc))
    assert not is_active(night, at(2023, 11, 20, 6, 0, tz=utc))


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ("1-5", "mon,tue,wed,thu,fri"),
        ("0", "sun"),
        ("7", "sun"),
        ("0,6", "sun,sat"),
        ("*", "*"),
        ("*/2", "sun,tue,thu,sat"),
        ("mon-fri", "mon,tue,wed,thu,fri"),  # names as crontab numbers them (sun = 0)
        ("sun-sat", "sun,mon,tue,wed,thu,fri,sat"),
        ("SAT,sun", "sat,sun"),
    ],
)
def test_crontab_weekday_translation(field: str, expected: str) -> None:
    assert crontab_day_of_week(field) == expected


def test_bad_weekday_is_rejected() -> None:
    with pytest.raises(ValueError, match="day of week"):
        crontab_day_of_week("3-9")


def test_schedule_min_raises_and_max_lowers_bounds() -> None:
    p = policy(
        min=1,
        max=10,
        schedules=(BUSINESS, Schedule("0 8 * * *", 3600.0, "Asia/Kolkata", max=4)),
    )
    monday_0830 = at(2023, 11, 20, 8, 30)
    b = bounds(p, monday_0830)
    assert (b.lower, b.upper, b.lower_reason, b.upper_reason) == (
        2,
        4,
        R.SCHEDULE_MIN,
        R.SCHEDULE_MAX,
    )
    assert clamp(1, b) == (2, R.SCHEDULE_MIN, "raised to 2 (schedule_min)")
    assert clamp(9, b).reason == R.SCHEDULE_MAX
    outside = bounds(p, at(2023, 11, 19, 12, 0))
    assert (outside.lower, outside.upper) == (1, 10)


def test_max_wins_over_a_conflicting_schedule_min() -> None:
    p = policy(min=1, max=3, schedules=(Schedule("0 8 * * *", 3600.0, "Asia/Kolkata", min=5),))
    b = bounds(p, at(2023, 11, 20, 8, 30))
    assert (b.lower, b.upper) == (3, 3)


@pytest.mark.parametrize(
    ("cost", "cap"),
    [
        (Cost(2.5, 20.0), 8),
        (Cost(2.5, 19.99), 7),
        (Cost(3.0, 10.0), 3),
        (Cost(0.1, 0.3), 3),  # 0.3 / 0.1 = 2.9999999999999996 must still be 3
        (Cost(None, 20.0), None),
        (Cost(2.5, None), None),
    ],
)
def test_cost_cap(cost: Cost, cap: int | None) -> None:
    assert cost_cap(cost) == cap


def test_cost_cap_beats_max() -> None:
    b = bounds(policy(min=1, max=20, cost=Cost(2.5, 20.0)), 0.0)
    assert (b.upper, b.upper_reason) == (8, R.COST_CAP)
    assert clamp(12, b) == (8, R.COST_CAP, "capped at 8 (cost_cap)")


def test_min_max() -> None:
    b = bounds(policy(min=2, max=5), 0.0)
    assert clamp(1, b).replicas == 2
    assert clamp(1, b).reason == R.MIN_REPLICAS
    assert clamp(7, b).reason == R.MAX_REPLICAS
    assert clamp(3, b) == (3, None, "")


def test_existing_deployment_never_clamped_to_zero() -> None:
    b = bounds(policy(min=0, max=5), 0.0)
    assert b.lower == 1
    assert bounds(policy(min=0, max=5), 0.0, floor_one=False).lower == 0


@given(st.lists(st.integers(0, 30 * 86400), min_size=1, max_size=30))
def test_fire_time_memo_returns_what_recomputing_would(offsets: list[int]) -> None:
    """The memo is an optimisation only: any order of queries gives the uncached answer."""
    cron, tz = "0 8 * * 1-5", "Asia/Kolkata"
    for off in offsets:
        start = T0 + off
        cached = first_fire_at_or_after(cron, tz, start)
        assert cached == next_fire(cron, tz, start)
        assert cached >= start


# stage table: (replicas proposed, settled) -> (count, reasons added)
@pytest.mark.parametrize(
    ("proposed", "settled", "count", "added"),
    [
        (5, False, 5, ()),
        (12, False, 10, (R.MAX_REPLICAS,)),
        (0, False, 2, (R.MIN_REPLICAS,)),
        (12, True, 12, ()),  # a settled count (override, delete) passes untouched
    ],
)
def test_clamp_stage(proposed: int, settled: bool, count: int, added: tuple[str, ...]) -> None:
    ctx = context(policy(min=2, max=10), ready(4))
    p = proposal(proposed, reasons=("x",), parts=("y",), settled=settled)
    out = clamp_stage(ctx, p)
    assert (out.replicas, out.reasons) == (count, ("x", *added))
    assert len(out.parts) == 1 + len(added)
    if not added and count == proposed:
        assert out is p  # nothing to add: the same value, no copy
