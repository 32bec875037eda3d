"""Shared pieces for the simulator tests: a stand-in controller and invariant checks.

The stand-in exercises the engine and the deployment model on its own (scale, delete, create);
the real decision core is covered by the tests that run policies.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from autoscaler.core.types import Decision, DeploymentState, Observation
from autoscaler.simulate.engine import RunResult
from autoscaler.simulate.results import timeline_integral
from autoscaler.simulate.signals import Signals


@dataclass
class ToyController:
    """Scale to ceil(in_flight / per_replica) + spare; delete after `idle_ticks` idle ticks;
    create when absent and anything waits. Not the core: an independent driver for the engine."""

    name: str = "toy"
    per_replica: int = 4
    spare: int = 0
    idle_ticks: int = 2
    interval: float | None = 5.0
    replica_hourly_usd: float | None = None
    evaluations: int = 0
    min_replicas: int = 0
    max_replicas: int = 50
    initial_replicas: int | None = 1
    _idle: int = field(default=0, repr=False)

    def observe(self, deployment: DeploymentState, signals: Signals) -> Observation:
        return Observation(deployment, {"in_flight": signals.in_flight})

    def evaluate(self, observation: Observation, signals: Signals, now: float) -> Decision:
        self.evaluations += 1
        in_flight = signals.in_flight
        if observation.status == "absent":
            if signals.waiting > 0:
                return Decision("create", max(1, math.ceil(in_flight / self.per_replica)), (), "")
            return Decision("none", 0, (), "")
        if observation.status != "ready":
            return Decision("none", observation.replicas, (), "")
        self._idle = self._idle + 1 if in_flight == 0 else 0
        if self._idle >= self.idle_ticks:
            self._idle = 0
            return Decision("delete", 0, (), "")
        want = max(1, math.ceil(in_flight / self.per_replica) + self.spare)
        want = min(want, self.max_replicas)
        if want != observation.replicas:
            return Decision("scale", want, (), "")
        return Decision("none", observation.replicas, (), "")


def check_request_invariants(result: RunResult, max_concurrency: int) -> None:
    """Every request served or dropped exactly once; no replica over its concurrency; none
    serving before it is ready or after it left; billed seconds = the timeline's integral."""
    assert result.arrival_s is not None and result.start_s is not None
    assert result.end_s_each is not None and result.replica is not None
    assert result.replica_ready_s is not None and result.replica_left_s is not None
    n = result.arrival_s.size
    served = ~np.isnan(result.start_s)
    assert served.sum() + (result.replica < 0).sum() == n
    assert np.array_equal(served, result.replica >= 0)
    assert result.requests_served + result.requests_dropped == n
    waits = result.start_s[served] - result.arrival_s[served]
    assert (waits >= -1e-9).all()
    # per replica: started after ready, ended before leaving, never above the concurrency
    for rid in np.unique(result.replica[served]):
        mine = result.replica == rid
        starts, ends = result.start_s[mine], result.end_s_each[mine]
        assert starts.min() >= result.replica_ready_s[rid] - 1e-9
        assert ends.max() <= result.replica_left_s[rid] + 1e-9
        times = np.concatenate([starts, ends])
        deltas = np.concatenate([np.ones(starts.size), -np.ones(ends.size)])
        order = np.lexsort((deltas, times))
        assert np.cumsum(deltas[order]).max() <= max_concurrency
    assert result.max_active_per_replica <= max_concurrency
    assert result.started_before_ready == 0
    assert math.isclose(
        result.billed_replica_seconds,
        timeline_integral(result.timeline),
        rel_tol=1e-9,
        abs_tol=1e-6,
    )
