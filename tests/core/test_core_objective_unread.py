"""Traffic with no service time read yet (objective.py, UNREAD_GRACE): vLLM records the
service time and the queue time when a request finishes, so after a quiet spell both read NaN
for up to a request's length while requests arrive. That stretch is sized (with the last
service time read, or from the requests in flight and queued), never scaled down, and not a
metric failure, for a while; past it the read fails like any other."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from autoscaler.core import Observation, decide, from_dict, initial_state
from autoscaler.core import reasons as R
from autoscaler.core.objective_unread import UNREAD_GRACE
from autoscaler.core.recommend import MAX_RECOMMENDATION
from autoscaler.core.state import to_dict
from autoscaler.core.types import DeploymentState

from .builders import T0
from .test_core_objective import load, run, slo

NAN = math.nan


def starting(rate: float, running: float, queue: float = 0.0) -> dict[str, float | None]:
    """Requests arriving and in flight, none finished yet: the two finish-recorded reads NaN."""
    return load(rate, service=NAN, running=running, queue=queue, wait_p99=NAN)


def test_first_traffic_is_sized_from_the_requests_in_flight_and_queued() -> None:
    # 40 in flight and 30 queued on 16 slots a replica: 5 replicas' worth, on 2.
    decisions, state, replicas = run(slo(), [starting(2.0, 40.0, 30.0)] * 8, replicas=2)
    first = decisions[0]
    assert first.replicas == 5, first
    assert R.OBJECTIVE_SERVICE_UNREAD in first.reasons and R.SCALE_UP in first.reasons
    assert "40 in flight and 30 queued need 5" in first.message
    for d in decisions:
        assert R.METRIC_FAILURE_HOLD not in d.reasons and R.FALLBACK not in d.reasons, d
    assert state.metric_failures == 0
    assert replicas == 5


def test_the_last_service_time_read_sizes_a_restart_of_traffic_and_nothing_scales_down() -> None:
    p = slo()
    busy = [load(20.0, service=4.0, running=80.0)] * 4
    quiet = [load(0.0, service=NAN, running=0.0, wait_p99=NAN)] * 40  # 10 minutes
    _, state, replicas = run(p, busy + quiet, replicas=6)
    assert replicas == 1 and state.objective is not None and state.objective.service == 4.0
    # Traffic again; the first requests have not finished: sized with the 4 s read before.
    again, state, _ = run(
        p, [starting(20.0, 70.0)] * 6, replicas=1, state=state, start=T0 + 44 * 15
    )
    assert again[0].replicas > 1, again[0]
    assert R.OBJECTIVE_SIZED in again[0].reasons and R.OBJECTIVE_SERVICE_UNREAD in again[0].reasons
    assert "the last read, 4s, stands" in again[0].message
    assert state.metric_failures == 0
    # With less load read while unread, no scale down below what is there.
    calmer, _, _ = run(
        p, [starting(1.0, 2.0)], replicas=again[-1].replicas, state=state, start=T0 + 50 * 15
    )
    assert calmer[0].replicas == again[-1].replicas, calmer[0]


def test_past_the_grace_the_read_fails_like_any_other() -> None:
    p = slo()
    steps = int(UNREAD_GRACE // 15) + 6
    decisions, state, _ = run(p, [starting(2.0, 20.0)] * steps, replicas=2)
    excused = [d for d in decisions if R.OBJECTIVE_SERVICE_UNREAD in d.reasons]
    failed = [
        d
        for d in decisions
        if R.METRICS_MISSING_NO_SCALE_DOWN in d.reasons or R.METRIC_FAILURE_HOLD in d.reasons
    ]
    assert len(excused) == UNREAD_GRACE // 15 + 1
    assert failed and R.METRIC_FAILURE_HOLD in decisions[-1].reasons, decisions[-1]
    assert state.metric_failures == steps - len(excused)


def test_a_reading_ends_the_stretch_and_a_gap_restarts_it() -> None:
    p = slo()
    _, state, replicas = run(p, [starting(2.0, 20.0)] * 3, replicas=2)
    assert state.objective is not None and state.objective.unread_since == T0
    _, state, _ = run(
        p, [load(2.0, service=5.0, running=20.0)], replicas=replicas, state=state, start=T0 + 45
    )
    assert state.objective is not None
    assert state.objective.unread_since is None and state.objective.service == 5.0
    # A stretch seen before a gap in evaluations longer than the grace starts again.
    _, state, _ = run(p, [starting(2.0, 20.0)], replicas=2, state=state, start=T0 + 60)
    later = T0 + 60 + UNREAD_GRACE + 100
    d, state, _ = run(p, [starting(2.0, 20.0)], replicas=2, state=state, start=later)
    assert R.OBJECTIVE_SERVICE_UNREAD in d[0].reasons and state.objective is not None
    assert state.objective.unread_since == later


def test_the_memory_round_trips_and_refuses_a_negative_service_time() -> None:
    _, state, _ = run(slo(), [load(2.0, service=3.5, running=8.0), starting(2.0, 9.0)])
    again = from_dict(to_dict(state))
    assert again == state and again.objective is not None
    assert again.objective.service == 3.5 and again.objective.unread_since == T0 + 15
    raw = to_dict(state)
    raw["objective"]["service"] = -1.0
    try:
        from_dict(raw)
    except ValueError as exc:
        assert "state.objective.service" in str(exc)
    else:
        raise AssertionError("a negative stored service time was accepted")


@settings(max_examples=200, deadline=None)
@given(
    st.floats(0.0, 400.0),
    st.floats(0.0, 400.0),
    st.floats(0.0, 200.0),
    st.floats(0.0, 200.0),
    st.integers(1, 30),
    st.sampled_from([None, 0.5, 4.0, 90.0]),
)
def test_more_requests_never_fewer_replicas_and_never_a_scale_down(
    running: float,
    more_running: float,
    queue: float,
    more_queue: float,
    current: int,
    remembered: float | None,
) -> None:
    p = slo()
    state = initial_state()
    if remembered is not None:
        _, state, _ = run(p, [load(1.0, service=remembered, running=1.0)], replicas=current)
    at = T0 + 15
    counts = []
    for r, q in ((running, queue), (running + more_running, queue + more_queue)):
        obs = Observation(DeploymentState("ready", current), starting(1.0, r, q))
        d, _ = decide(p, state, obs, at)
        assert d.replicas >= current, d
        assert R.OBJECTIVE_SERVICE_UNREAD in d.reasons, d
        counts.append(d.replicas)
    assert counts[1] >= counts[0]


def test_readings_beyond_the_float_range_size_the_maximum() -> None:
    # 1e308 in flight plus 1e308 queued is inf: no OverflowError, the most it can ask for
    # (the rate policy then limits the step).
    decisions, _, _ = run(slo(max=50), [starting(1.0, 1e308, 1e308)], replicas=2)
    assert decisions[0].desired == MAX_RECOMMENDATION and decisions[0].replicas > 2
