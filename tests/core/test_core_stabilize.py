"""Stabilize stage: HPA stabilization windows (down: max in window; up: min in window),
and the monotone-queue history agreeing with the naive full-history computation."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autoscaler.core import reasons as R
from autoscaler.core.proposal import History
from autoscaler.core.stabilize import record, stabilize, stabilize_stage

from .builders import T0, context, policy, proposal, ready, rules


def run(
    recs: list[tuple[float, int]], current: int, up: float, down: float
) -> tuple[int, str | None, History, History]:
    uh: History = ()
    dh: History = ()
    result = None
    for t, desired in recs:
        result = stabilize(current, desired, t, up, down, uh, dh)
        uh, dh = result.up_history, result.down_history
    assert result is not None
    return result.replicas, result.reason, uh, dh


def test_default_down_window_keeps_the_highest_recommendation() -> None:
    # 300 s window (HPA default): a drop from 8 to 3 is held at 8 for the whole window
    recs = [(0.0, 8), (15.0, 5), (30.0, 3)]
    replicas, reason, _, _ = run(recs, current=8, up=0.0, down=300.0)
    assert (replicas, reason) == (8, R.STABILIZED_DOWN)


def test_down_window_expires() -> None:
    recs = [(0.0, 8), (150.0, 5), (300.0, 3)]
    # at t=300 the t=0 entry is out ((0 > 300 - 300) is false), max is 5
    replicas, reason, _, _ = run(recs, current=8, up=0.0, down=300.0)
    assert (replicas, reason) == (5, R.STABILIZED_DOWN)
    replicas, reason, _, _ = run([*recs, (451.0, 3)], current=5, up=0.0, down=300.0)
    assert (replicas, reason) == (3, None)


def test_up_window_keeps_the_lowest_recommendation() -> None:
    recs = [(0.0, 2), (15.0, 6), (30.0, 9)]
    replicas, reason, _, _ = run(recs, current=2, up=60.0, down=0.0)
    assert (replicas, reason) == (2, R.STABILIZED_UP)
    replicas, reason, _, _ = run([*recs, (61.0, 9)], current=2, up=60.0, down=0.0)
    assert (replicas, reason) == (6, R.STABILIZED_UP)


def test_no_windows_follows_the_recommendation() -> None:
    replicas, reason, uh, dh = run([(0.0, 9), (15.0, 1)], current=5, up=0.0, down=0.0)
    assert (replicas, reason, uh, dh) == (1, None, (), ())


def test_rising_recommendation_is_not_held_by_down_window() -> None:
    replicas, reason, _, _ = run([(0.0, 3), (15.0, 7)], current=3, up=0.0, down=300.0)
    assert (replicas, reason) == (7, None)


def test_stabilized_value_never_crosses_current() -> None:
    # desired 4 below current 6; window max 9 above current: result is current, not 9
    replicas, _, _, _ = run([(0.0, 9), (15.0, 4)], current=6, up=0.0, down=300.0)
    assert replicas == 6


def test_skip_up_for_panic() -> None:
    uh = record((), 0.0, 60.0, 2, keep_max=False)
    result = stabilize(2, 10, 15.0, 60.0, 0.0, uh, (), skip_up=True)
    assert result.replicas == 10


@given(
    st.lists(st.tuples(st.integers(0, 30), st.integers(0, 12)), min_size=1, max_size=60),
    st.sampled_from((15.0, 60.0, 300.0)),
)
def test_queue_matches_naive_window(steps: list[tuple[int, int]], window: float) -> None:
    """The trimmed monotone queues give exactly the window max/min of the full history."""
    t = 0.0
    full: list[tuple[float, int]] = []
    down: History = ()
    up: History = ()
    for gap, value in steps:
        t += gap
        full.append((t, value))
        down = record(down, t, window, value, keep_max=True)
        up = record(up, t, window, value, keep_max=False)
        in_window = [v for (s, v) in full if s > t - window]
        assert down[0][1] == max(in_window)
        assert up[0][1] == min(in_window)
        assert len(down) <= len(in_window) and len(up) <= len(in_window)


# stage table, 60 s windows both ways, a past recommendation of `before` 30 s ago:
# (current, desired, before, resumed 10 s ago) -> (count, reasons)
@pytest.mark.parametrize(
    ("current", "desired", "before", "resumed", "count", "reasons"),
    [
        (4, 4, None, False, 4, ()),
        (4, 2, 6, False, 4, (R.STABILIZED_DOWN,)),  # the down window remembers 6
        (4, 8, 5, False, 5, (R.STABILIZED_UP,)),  # the up window remembers 5
        (4, 2, None, True, 4, (R.STABILIZED_DOWN,)),  # just resumed: no scale-down yet
    ],
)
def test_stabilize_stage(
    current: int,
    desired: int,
    before: int | None,
    resumed: bool,
    count: int,
    reasons: tuple[str, ...],
) -> None:
    p = policy(scale_up=rules(window=60.0), scale_down=rules(window=60.0))
    past: History = () if before is None else ((T0 - 30.0, before),)
    start = proposal(
        desired,
        desired,
        up_history=past,
        down_history=past,
        resumed_at=T0 - 10.0 if resumed else None,
    )
    out = stabilize_stage(context(p, ready(current)), start)
    assert (out.replicas, out.reasons) == (count, reasons)
    assert out.up_history[-1] == out.down_history[-1] == (T0, desired)  # recorded
    ruled = start._replace(ruled=True)
    assert stabilize_stage(context(p, ready(current)), ruled) is ruled
