"""What decides the replica count during a simulation run.

`PolicyController` runs a policy through the decision core the daemon runs
(`autoscaler.core.decide`), keeping the core's state between evaluations exactly as the daemon
does; nothing here re-implements scaling logic. `FixedController` never evaluates (the
`static-peak` baseline: a fixed count, always).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from autoscaler.core.types import Decision, DeploymentState, Observation
from autoscaler.policy.model import Policy
from autoscaler.simulate.signals import Binding, Signals, metric_values


class Controller(Protocol):
    name: str
    replica_hourly_usd: float | None
    evaluations: int

    @property
    def interval(self) -> float | None:
        """Seconds between evaluations; None: never evaluates."""

    @property
    def initial_replicas(self) -> int | None:
        """Replicas at the start; None: the engine sizes the start for the opening load."""

    @property
    def min_replicas(self) -> int: ...

    @property
    def max_replicas(self) -> int: ...

    def evaluate(self, observation: Observation, signals: Signals, now: float) -> Decision: ...

    def observe(self, deployment: DeploymentState, signals: Signals) -> Observation: ...


@dataclass
class PolicyController:
    """A policy driven through the real decision core."""

    policy: Policy
    bindings: Sequence[Binding]
    name: str = ""
    epoch_offset: float = 0.0  # added to simulated seconds to give the core epoch seconds
    replica_hourly_usd: float | None = None
    initial_replicas: int | None = None
    evaluations: int = 0
    _state: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        from autoscaler.core import initial_state

        self.name = self.name or self.policy.name
        if self.replica_hourly_usd is None:
            self.replica_hourly_usd = self.policy.cost.replica_hourly_usd
        self._state = initial_state(self.policy)

    @property
    def interval(self) -> float | None:
        return self.policy.interval

    @property
    def min_replicas(self) -> int:
        return self.policy.replicas.min

    @property
    def max_replicas(self) -> int:
        return self.policy.replicas.max

    def observe(self, deployment: DeploymentState, signals: Signals) -> Observation:
        return Observation(
            deployment,
            metric_values(self.bindings, signals),
            startup_seconds=signals.startup_s,
        )

    def evaluate(self, observation: Observation, signals: Signals, now: float) -> Decision:
        from autoscaler.core import decide

        self.evaluations += 1
        decision, self._state = decide(
            self.policy, self._state, observation, now + self.epoch_offset
        )
        return decision


@dataclass
class FixedController:
    """A fixed replica count that never changes (static provisioning)."""

    name: str
    replicas: int
    replica_hourly_usd: float | None = None
    evaluations: int = 0

    @property
    def interval(self) -> float | None:
        return None

    @property
    def initial_replicas(self) -> int | None:
        return self.replicas

    @property
    def min_replicas(self) -> int:
        return self.replicas

    @property
    def max_replicas(self) -> int:
        return self.replicas

    def observe(self, deployment: DeploymentState, signals: Signals) -> Observation:
        return Observation(deployment, {})

    def evaluate(self, observation: Observation, signals: Signals, now: float) -> Decision:
        return Decision("none", observation.replicas, ("fixed",), "static count")
