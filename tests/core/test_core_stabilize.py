"""Stabilize stage: HPA stabilization windows (down: max in window; up: min in window),
and the monotone-queue history agreeing with the naive full-history computation."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from autoscaler.core import reasons as R
from autoscaler.core.stabilize import History, record, stabilize


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
