"""The request-level engine and the deployment model: invariants, lifecycle, bound, modes."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from autoscaler.simulate.aggregated import (
    request_step_arrivals,
    run_aggregated,
    service_bins,
)
from autoscaler.simulate.baselines import baseline_controller
from autoscaler.simulate.controllers import FixedController
from autoscaler.simulate.deployment import DeploymentTiming
from autoscaler.simulate.engine import RunSettings, run_requests
from autoscaler.simulate.results import timeline_integral
from autoscaler.simulate.service import request_bound
from autoscaler.simulate.traces import RequestTrace
from tests.simulate.helpers import ToyController, check_request_invariants


def timing(**changes: float) -> DeploymentTiming:
    values = {"max_concurrency": 2, "provision_s": 20.0, "create_s": 60.0, "delete_s": 10.0}
    values.update(changes)
    return DeploymentTiming(
        max_concurrency=int(values["max_concurrency"]),
        provision_s=values["provision_s"],
        create_s=values["create_s"],
        delete_s=values["delete_s"],
    )


def burst_then_gap() -> tuple[np.ndarray, np.ndarray]:
    """Load, then 5 minutes of nothing, then load again: scale up, down, delete, create."""
    rng = np.random.default_rng(7)
    first = np.sort(rng.uniform(0, 120, 80))
    second = np.sort(rng.uniform(420, 500, 60))
    arrivals = np.concatenate([first, second])
    return arrivals, rng.uniform(2.0, 12.0, arrivals.size)


def test_toy_controller_lifecycle_keeps_every_invariant() -> None:
    arrivals, service = burst_then_gap()
    result = run_requests(ToyController(), arrivals, service, RunSettings(timing()))
    check_request_invariants(result, 2)
    actions = result.scale_actions
    assert actions["scale_up"] > 0 and actions["scale_down"] > 0
    assert actions["delete"] >= 1 and actions["create"] >= 1
    assert result.requests_dropped == 0
    # requests of the second burst arrived while absent: they waited for the create
    assert result.start_s is not None
    waits = result.start_s - arrivals
    assert waits[arrivals > 420].max() >= 60.0 - 1e-9


def test_bill_from_ready_bills_less_than_bill_from_call() -> None:
    arrivals, service = burst_then_gap()
    from_call = run_requests(ToyController(), arrivals, service, RunSettings(timing()))
    ready_timing = DeploymentTiming(2, 20.0, 60.0, 10.0, bill_from_ready=True)
    from_ready = run_requests(ToyController(), arrivals, service, RunSettings(ready_timing))
    check_request_invariants(from_ready, 2)
    assert from_ready.billed_replica_seconds < from_call.billed_replica_seconds


def test_queue_timeout_drops_requests_that_waited_too_long() -> None:
    arrivals = np.zeros(10)  # ten at once, one replica with one slot, 10 s each
    service = np.full(10, 10.0)
    fixed = FixedController("one", 1)
    settings = RunSettings(timing(max_concurrency=1), queue_timeout_s=25.0)
    result = run_requests(fixed, arrivals, service, settings)
    check_request_invariants(result, 1)
    assert result.requests_served == 3  # starts at 0, 10, 20; the fourth would start at 30
    assert result.requests_dropped == 7


@pytest.mark.parametrize("name", ["hpa", "keda-vllm", "kpa"])
def test_baselines_run_through_the_core_and_keep_invariants(name: str) -> None:
    arrivals, service = burst_then_gap()
    controller = baseline_controller(
        name, max_concurrency=2, max_replicas=20, peak_replicas=10, replica_hourly_usd=None
    )
    result = run_requests(controller, arrivals, service, RunSettings(timing(), None, 1))
    check_request_invariants(result, 2)
    assert controller.evaluations > 0
    assert sum(result.scale_actions.values()) > 0


def test_static_peak_never_queues_and_costs_at_least_the_bound() -> None:
    arrivals, service = burst_then_gap()
    bound = request_bound(arrivals, service, 2, 20.0)
    fixed = FixedController("static", math.ceil(bound.peak_in_flight / 2))
    result = run_requests(fixed, arrivals, service, RunSettings(timing()))
    check_request_invariants(result, 2)
    assert result.wait_values.max() == 0.0
    assert result.billed_replica_seconds >= bound.replica_seconds - 1e-9


def test_bound_by_hand() -> None:
    # two requests overlap on [1, 3): in flight 1,2,1 -> with one slot per replica 1,2,1
    bound = request_bound(np.array([0.0, 1.0]), np.array([3.0, 4.0]), 1, 10.0)
    assert bound.replica_seconds == pytest.approx(1 * 1 + 2 * 2 + 1 * 2)
    assert bound.peak_in_flight == 2
    # a request ending exactly when another starts reuses the slot
    touching = request_bound(np.array([0.0, 2.0]), np.array([2.0, 2.0]), 1, 10.0)
    assert touching.replica_seconds == pytest.approx(4.0)
    assert touching.peak_in_flight == 1


small_traces = st.lists(
    st.tuples(st.floats(0, 300), st.floats(0.1, 30)), min_size=1, max_size=60
).map(lambda rows: sorted(rows))


@given(rows=small_traces, mc=st.integers(1, 4), spare=st.integers(0, 2))
def test_bound_is_below_every_zero_wait_run_and_work_is_below_every_run(
    rows: list[tuple[float, float]], mc: int, spare: int
) -> None:
    arrivals = np.array([r[0] for r in rows])
    service = np.array([r[1] for r in rows])
    bound = request_bound(arrivals, service, mc, 20.0)
    work = float(service.sum()) / mc  # no run can bill less than the work it served
    runs = [
        run_requests(
            FixedController("peak", math.ceil(bound.peak_in_flight / mc)),
            arrivals,
            service,
            RunSettings(timing(max_concurrency=mc)),
        ),
        run_requests(
            ToyController(per_replica=mc, spare=spare, interval=3.0),
            arrivals,
            service,
            RunSettings(timing(max_concurrency=mc, provision_s=5.0, create_s=8.0)),
        ),
        run_requests(
            baseline_controller(
                "kpa", max_concurrency=mc, max_replicas=30, peak_replicas=1, replica_hourly_usd=None
            ),
            arrivals,
            service,
            RunSettings(timing(max_concurrency=mc), None, 1),
        ),
    ]
    for result in runs:
        check_request_invariants(result, mc)
        assert result.billed_replica_seconds >= work - 1e-6
        if result.wait_values.size == arrivals.size and result.wait_values.max() == 0.0:
            assert result.billed_replica_seconds >= bound.replica_seconds - 1e-6
    assert runs[0].billed_replica_seconds >= bound.replica_seconds - 1e-6


def test_aggregated_mode_conserves_requests_and_bills_its_timeline() -> None:
    arrivals, service = burst_then_gap()
    trace = RequestTrace(
        arrivals, np.zeros(arrivals.size, np.int64), np.zeros(arrivals.size, np.int64), "t", "x"
    )
    amounts = request_step_arrivals(trace, 1.0)
    bins = service_bins(service, 1.0)
    result = run_aggregated(ToyController(), amounts, 1.0, bins, RunSettings(timing()))
    assert result.mode == "aggregated"
    assert result.requests_total == pytest.approx(arrivals.size)
    assert result.requests_served + result.requests_dropped == pytest.approx(arrivals.size)
    assert result.requests_dropped == pytest.approx(0.0, abs=1e-6)
    assert result.scale_actions["delete"] >= 1 and result.scale_actions["create"] >= 1
    # billing changes land on step boundaries here (whole-second delays), so exact
    assert result.billed_replica_seconds == pytest.approx(timeline_integral(result.timeline))


def test_aggregated_and_request_modes_agree_roughly_on_a_steady_load() -> None:
    rng = np.random.default_rng(3)
    arrivals = np.sort(rng.uniform(0, 1800, 3600))
    service = rng.uniform(5, 15, arrivals.size)
    trace = RequestTrace(
        arrivals, np.zeros(arrivals.size, np.int64), np.zeros(arrivals.size, np.int64), "t", "x"
    )
    settings = RunSettings(timing(max_concurrency=8), None, 3)
    exact = run_requests(ToyController(per_replica=6, idle_ticks=99), arrivals, service, settings)
    fluid = run_aggregated(
        ToyController(per_replica=6, idle_ticks=99),
        request_step_arrivals(trace, 1.0),
        1.0,
        service_bins(service, 1.0),
        settings,
    )
    assert fluid.billed_replica_seconds == pytest.approx(exact.billed_replica_seconds, rel=0.15)


def test_warmup_holds_the_opening_size_while_the_controller_observes() -> None:
    arrivals, service = burst_then_gap()
    toy = ToyController(initial_replicas=None)
    settings = RunSettings(timing(), None, initial_replicas=3, warmup_s=100.0)
    result = run_requests(toy, arrivals, service, settings)
    check_request_invariants(result, 2)
    assert toy.evaluations > 100 / 5  # observed (and decided) during the warm-up
    before = [row for row in result.timeline if row[0] < 100.0]
    assert {(row[1], row[2], row[3]) for row in before} == {(3, 0, 3)}  # held, nothing applied
    assert any(row[3] != 3 for row in result.timeline if row[0] >= 100.0)
