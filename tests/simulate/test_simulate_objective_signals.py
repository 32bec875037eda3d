"""The signals an objective policy reads (rates, service-time statistics, observed wait) and
the start-up time the daemon would measure, in both engines."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from autoscaler.core.status import DeploymentState
from autoscaler.core.types import Decision, Observation
from autoscaler.policy.loader import load_policy_file
from autoscaler.simulate.aggregated import request_step_arrivals, run_aggregated, service_bins
from autoscaler.simulate.controllers import PolicyController
from autoscaler.simulate.engine import RunSettings, run_requests
from autoscaler.simulate.run import SimSettings, prepare, run_one
from autoscaler.simulate.signals import (
    SIGNAL_WINDOW_S,
    Signals,
    SignalWindow,
    bind_metrics,
    metric_values,
)
from autoscaler.simulate.traces import RequestTrace
from tests.simulate.helpers import ToyController
from tests.simulate.test_simulate_engine import timing

ROOT = Path(__file__).resolve().parents[2]
LLM_SLO = ROOT / "policies" / "llm-slo.yaml"


def test_llm_slo_binds_every_objective_signal_from_vllm_names() -> None:
    (policy,) = load_policy_file(LLM_SLO)
    assert policy.objective is not None
    bound = {b.metric: b for b in bind_metrics(policy, {})}
    wanted = {name: key for key, name in policy.objective.signals.names()}
    signal_for = {
        "arrival_rate": "start_rate",  # time_to_first_token count: requests getting a slot
        "service_time": "service_time",
        "in_flight": "running",
        "queue": "waiting",
        "observed_wait": "observed_wait",
    }
    assert {m: bound[m].signal for m in wanted} == {m: signal_for[k] for m, k in wanted.items()}
    assert all(b.quantile == policy.objective.quantile for b in bound.values())


def test_the_window_reports_rates_service_statistics_and_waits() -> None:
    window = SignalWindow(60.0, service_mean=9.0, service_cv=0.5, weighted=False)
    first = window.close(0.0, 10.0)  # nothing finished yet: the trace's own service time
    assert (first.arrival_rate, first.service_time, first.service_time_cv) == (0.0, 9.0, 0.5)
    for _ in range(30):
        window.arrived()
    window.completed(1.0, 2.0)
    window.completed(1.0, 6.0)
    for wait in (0.0, 1.0, 8.0):
        window.started(wait)
    stats = window.close(10.0, 10.0)
    assert stats.arrival_rate == pytest.approx(3.0)
    assert stats.completion_rate == pytest.approx(0.2)
    assert stats.start_rate == pytest.approx(0.3)
    assert stats.service_time == pytest.approx(4.0)
    assert stats.service_time_cv == pytest.approx(0.5)  # sd 2 over mean 4
    assert sorted(stats.wait_values.tolist()) == [0.0, 1.0, 8.0]
    # 70 s later with nothing new, the first minute has left the window; the service time
    # keeps its last measured value (a rate over an empty window has no mean)
    for t in range(20, 90, 10):
        stats = window.close(float(t), 10.0)
    assert stats.arrival_rate == 0.0 and stats.wait_values.size == 0
    assert stats.service_time == pytest.approx(4.0)


def test_observed_wait_is_the_quantile_of_started_waits_else_the_oldest_wait() -> None:
    waits = np.arange(100, dtype=np.float64)  # 0..99 s
    signals = Signals(0.0, 0.0, 0.0, 0.0, 1, wait_values=waits, oldest_wait=500.0)
    assert signals.value("observed_wait", 0.5) == pytest.approx(49.5)
    assert signals.value("observed_wait", 0.99) == pytest.approx(98.01)
    nothing_started = Signals(3.0, 16.0, 0.0, 1.0, 1, oldest_wait=42.0)
    assert nothing_started.value("observed_wait", 0.99) == 42.0
    (policy,) = load_policy_file(LLM_SLO)
    values = metric_values(bind_metrics(policy, {}), signals)
    assert values["queue_wait_p99"] == pytest.approx(98.01)


@dataclass
class Recorder(ToyController):
    """The toy controller, keeping every observation and signal it was shown."""

    seen: list[tuple[float, Observation, Signals]] = field(default_factory=list)

    def evaluate(self, observation: Observation, signals: Signals, now: float) -> Decision:
        self.seen.append((now, observation, signals))
        return super().evaluate(observation, signals, now)


def steady_then_burst() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    calm = np.sort(rng.uniform(0, 200, 100))
    burst = np.sort(rng.uniform(200, 400, 600))
    arrivals = np.concatenate([calm, burst])
    return arrivals, rng.uniform(2.0, 6.0, arrivals.size)


def test_both_engines_measure_start_up_and_feed_the_window() -> None:
    arrivals, service = steady_then_burst()
    provision = 25.0
    settings = RunSettings(timing(provision_s=provision, max_concurrency=4), None, 1)
    trace = RequestTrace(
        arrivals, np.zeros(arrivals.size, np.int64), np.zeros(arrivals.size, np.int64), "t", "x"
    )
    request = Recorder(idle_ticks=10**6)
    run_requests(request, arrivals, service, settings)
    fluid = Recorder(idle_ticks=10**6)
    run_aggregated(
        fluid, request_step_arrivals(trace, 1.0), 1.0, service_bins(service, 1.0), settings
    )
    for recorder in (request, fluid):
        startups = [s.startup_s for _, _, s in recorder.seen]
        assert startups[0] is None  # the opening replicas are warm: nothing measured yet
        measured = [s for s in startups if s is not None]
        assert measured and all(s == pytest.approx(provision, abs=1.0) for s in measured)
        # arrival rate over the last minute: about 3 req/s inside the burst
        in_burst = [s.arrival_rate for t, _, s in recorder.seen if 260 <= t <= 400]
        assert np.mean(in_burst) == pytest.approx(3.0, rel=0.25)
        # the service time reported is what requests took (2-6 s, mean 4)
        late = [s.service_time for t, _, s in recorder.seen if t > 100]
        assert all(2.0 <= v <= 6.0 for v in late)
        assert not any(math.isnan(s.completion_rate) for _, _, s in recorder.seen)
    assert SIGNAL_WINDOW_S == 60.0


def test_a_policy_controller_passes_the_measured_start_up_to_the_core() -> None:
    (policy,) = load_policy_file(LLM_SLO)
    controller = PolicyController(policy=policy, bindings=bind_metrics(policy, {}))
    signals = Signals(2.0, 30.0, 3.0, 0.9, 2, startup_s=142.0)
    observation = controller.observe(DeploymentState("ready", 2, 2), signals)
    assert observation.startup_seconds == 142.0
    assert set(observation.metrics) == {m.name for m in policy.metrics}


@pytest.mark.parametrize("mode", ["request", "aggregated"])
def test_an_objective_policy_runs_in_both_modes(mode: str) -> None:
    (policy,) = load_policy_file(LLM_SLO)
    controller = PolicyController(policy=policy, bindings=bind_metrics(policy, {}))
    decide = controller.evaluate
    reasons: set[str] = set()
    startups: list[float | None] = []

    def spy(observation: Observation, signals: Signals, now: float) -> Decision:
        decision = decide(observation, signals, now)
        reasons.update(decision.reasons)
        startups.append(observation.startup_seconds)
        return decision

    controller.evaluate = spy  # type: ignore[method-assign]
    arrivals, _ = steady_then_burst()
    rng = np.random.default_rng(2)
    tokens = rng.integers(300, 600, arrivals.size)  # 10-20 s: ~45 in flight in the burst
    trace = RequestTrace(arrivals, tokens * 20, tokens, "t", "x")
    settings = SimSettings(provision_s=60.0, warmup_s=30.0, mode=mode)  # type: ignore[arg-type]
    result = run_one(controller, prepare(trace, None, settings), settings)
    assert result.requests_served == pytest.approx(arrivals.size)
    assert "objective_sized" in reasons
    assert result.scale_actions["scale_up"] >= 1  # the burst needs more than the opening size
    assert 60.0 in startups  # the measured start-up reached the core
