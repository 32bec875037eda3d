"""Limit stage: HPA rate policies (ported semantics and defaults), select max/min/disabled,
periods measured from the count at the start of the period, cooldowns, Knative panic."""

from __future__ import annotations

from dataclasses import replace

import pytest

from autoscaler.core import initial_state
from autoscaler.core import reasons as R
from autoscaler.core.limit import (
    is_panic,
    limit,
    limit_stage,
    panic_stage,
    scale_down_limit,
    scale_up_limit,
)
from autoscaler.policy.model import Panic, default_scale_down, default_scale_up

from .builders import T0, context, policy, proposal, ready, rules

NOW = 1000.0


@pytest.mark.parametrize(
    ("current", "expected"),
    [
        (1, 5),  # max(1 + 4, ceil(1 x 2)) = 5
        (3, 7),  # max(7, 6)
        (4, 8),  # max(8, 8)
        (5, 10),  # max(9, 10)
        (10, 20),
    ],
)
def test_default_scale_up_is_max_of_4_pods_or_100_percent(current: int, expected: int) -> None:
    assert scale_up_limit(current, (), NOW, default_scale_up())[0] == expected


def test_default_scale_down_allows_everything_at_once() -> None:
    assert scale_down_limit(10, (), NOW, default_scale_down())[0] == 0


@pytest.mark.parametrize(
    ("select", "expected_up", "expected_down"),
    [
        ("max", 20, 5),  # most permissive: +100% up; -50% down
        ("min", 12, 8),  # least permissive: +2 up; -2 down
        ("disabled", 10, 10),  # no movement in that direction
    ],
)
def test_select(select: str, expected_up: int, expected_down: int) -> None:
    up = rules(policies=(("replicas", 2, 60.0), ("percent", 100, 60.0)), select=select)
    down = rules(policies=(("replicas", 2, 60.0), ("percent", 50, 60.0)), select=select)
    assert scale_up_limit(10, (), NOW, up)[0] == expected_up
    assert scale_down_limit(10, (), NOW, down)[0] == expected_down


def test_period_starts_from_the_count_before_recent_events() -> None:
    # +4 replicas per 60 s; 3 were added 30 s ago (current 8 = 5 at the period start)
    up = rules(policies=(("replicas", 4, 60.0),))
    events = ((NOW - 30.0, 3),)
    assert scale_up_limit(8, events, NOW, up)[0] == 9  # 5 + 4
    # once the event leaves the period the full step is available again
    assert scale_up_limit(8, events, NOW + 31.0, up)[0] == 12


def test_events_outside_period_are_ignored_and_mixed_directions_net_out() -> None:
    up = rules(policies=(("percent", 50, 60.0),))
    events = ((NOW - 120.0, 10), (NOW - 40.0, 4), (NOW - 20.0, -2))
    # start of period: 10 - (4 - 2) = 8 -> ceil(8 x 1.5) = 12
    assert scale_up_limit(10, events, NOW, up)[0] == 12


def test_up_limit_never_below_current() -> None:
    # the period is used up (start 4, +1 allowed, current 6): hold at current, never shrink
    up = rules(policies=(("replicas", 1, 60.0),))
    assert scale_up_limit(6, ((NOW - 10.0, 2),), NOW, up)[0] == 6


def test_down_percent_truncates_like_hpa() -> None:
    down = rules(policies=(("percent", 10, 60.0),))
    assert scale_down_limit(5, (), NOW, down)[0] == 4  # int(5 x 0.9) = 4
    assert scale_down_limit(10, (), NOW, down)[0] == 9


def test_down_period_uses_recorded_scale_downs() -> None:
    down = rules(policies=(("replicas", 2, 60.0),))
    # went 10 -> 8 20 s ago: period start is 10, floor is 8: no more this period
    assert scale_down_limit(8, ((NOW - 20.0, -2),), NOW, down)[0] == 8


def test_percent_up_rounds_up_so_one_replica_can_grow() -> None:
    up = rules(policies=(("percent", 10, 15.0),))
    assert scale_up_limit(1, (), NOW, up)[0] == 2  # ceil(1.1)


def test_limit_reports_rate_limited_up_with_the_policy() -> None:
    up = rules(policies=(("replicas", 4, 15.0),))
    out = limit(3, 8, NOW, up, default_scale_down(), (), None, False, None)
    assert (out.replicas, out.reason) == (7, R.RATE_LIMITED_UP)
    assert out.message == "limited by replicas policy (4/15s) to 7"


def test_limit_reports_rate_limited_down() -> None:
    down = rules(policies=(("replicas", 1, 60.0),))
    out = limit(5, 1, NOW, default_scale_up(), down, (), None, False, None)
    assert (out.replicas, out.reason) == (4, R.RATE_LIMITED_DOWN)


def test_disabled_direction_reasons() -> None:
    up = rules(select="disabled")
    down = rules(select="disabled")
    assert limit(3, 8, NOW, up, down, (), None, False, None).reason == R.SCALE_UP_DISABLED
    assert limit(3, 1, NOW, up, down, (), None, False, None).reason == R.SCALE_DOWN_DISABLED


def test_no_policies_means_no_rate_limit() -> None:
    out = limit(1, 50, NOW, rules(), rules(), (), None, False, None)
    assert (out.replicas, out.reason) == (50, None)


def test_cooldowns_are_per_direction() -> None:
    up = rules(cooldown=60.0)
    down = rules(cooldown=300.0)
    last = NOW - 100.0
    # 100 s after the last action: up cooldown (60) passed, down cooldown (300) not
    assert limit(3, 5, NOW, up, down, (), last, False, None).replicas == 5
    out = limit(5, 3, NOW, up, down, (), last, False, None)
    assert (out.replicas, out.reason) == (5, R.COOLDOWN_DOWN)
    out = limit(3, 5, NOW, up, down, (), NOW - 10.0, False, None)
    assert (out.replicas, out.reason) == (3, R.COOLDOWN_UP)


def test_panic_skips_up_cooldown_but_not_rate_limits() -> None:
    up = rules(cooldown=600.0, policies=(("replicas", 4, 15.0),))
    out = limit(2, 20, NOW, up, rules(), (), NOW - 5.0, True, NOW + 60.0)
    assert (out.replicas, out.reason) == (6, R.RATE_LIMITED_UP)


def test_panic_hold_blocks_scale_down() -> None:
    out = limit(6, 2, NOW, rules(), rules(), (), None, False, NOW + 1.0)
    assert (out.replicas, out.reason) == (6, R.PANIC_HOLD)
    assert limit(6, 2, NOW, rules(), rules(), (), None, False, NOW).replicas == 2


@pytest.mark.parametrize(
    ("desired", "current", "ready", "expected"),
    [
        (6, 3, 3, True),  # 6 >= 2.0 x 3 (Knative: desired / ready >= threshold)
        (5, 3, 3, False),
        (4, 1, 2, True),  # threshold counts ready pods, not requested ones
        (2, 1, 0, True),  # no ready pods: counted as 1
        (3, 3, 1, False),  # not a scale-up: never panic
    ],
)
def test_panic_condition(desired: int, current: int, ready: int, expected: bool) -> None:
    assert is_panic(Panic(2.0, 60.0), desired, current, ready) is expected
    assert is_panic(None, desired, current, ready) is False


# panic stage table: (desired, ready) with threshold 2 -> panicking
@pytest.mark.parametrize(
    ("desired", "ready_count", "panicking"),
    [(8, 4, True), (7, 4, False), (3, 2, False), (2, 0, False), (5, 0, True)],
)
def test_panic_stage(desired: int, ready_count: int, panicking: bool) -> None:
    p = policy(panic=Panic(threshold=2.0, hold=60.0))
    ctx = context(p, ready(2, ready_count))
    out = panic_stage(ctx, proposal(desired, desired))
    assert out.panicking is panicking
    assert out.reasons == ((R.PANIC,) if panicking else ())
    assert out.panic_until == (ctx.now + 60.0 if panicking else None)


# limit stage table: (current, proposed, last action age) -> (count, reason)
@pytest.mark.parametrize(
    ("current", "proposed", "age", "count", "reason"),
    [
        (4, 6, None, 6, None),
        (4, 9, None, 8, R.RATE_LIMITED_UP),  # 100 % per period at most
        (4, 6, 10.0, 4, R.COOLDOWN_UP),
        (4, 2, 10.0, 4, R.COOLDOWN_DOWN),
        (4, 2, None, 2, None),
    ],
)
def test_limit_stage(
    current: int, proposed: int, age: float | None, count: int, reason: str | None
) -> None:
    p = policy(
        scale_up=rules(policies=(("percent", 100, 60.0),), cooldown=30.0),
        scale_down=rules(cooldown=30.0),
    )
    state = initial_state()
    if age is not None:
        state = replace(state, last_action=(T0 - age, "scale_up"))
    out = limit_stage(context(p, ready(current), state), proposal(proposed, proposed))
    assert (out.replicas, out.reasons) == (count, (reason,) if reason else ())
