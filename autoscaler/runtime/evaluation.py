"""What one evaluation produces, step by step: frozen values, each step's result handed to the
next (observe -> decide -> act), and the whole as an `EvaluationResult` that `record.py`
writes down.

    Observed   the deployment as the provider reports it, the metric readings, and whether
               a deployment created from zero became ready (or was given up on) this pass
    Decided    the core's decision on it, and whether this daemon may carry it out
    Acted      what became of it at the provider (attempted, the error if it failed)
    EvaluationResult  the pass: an unfinished intent moved on, an observation that failed,
               or the full observe -> decide -> act

Values only: no I/O here (`observation_of` builds the core's observation from what was read).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from autoscaler.core.types import ABSENT, Decision, Observation
from autoscaler.providers.base import DeploymentInfo, ProviderError
from autoscaler.sources.base import SourceError


@dataclass(frozen=True, slots=True)
class Reading:
    """One metric read: its value, or the source's error."""

    metric: str
    source: str  # the source's type, a fixed metric label (`redis`, `promql` ...)
    value: float | None
    error: SourceError | None
    seconds: float


@dataclass(frozen=True, slots=True)
class Observed:
    now: float  # the core's `now` for this pass (unix seconds)
    deployment: DeploymentInfo | None
    observation: Observation
    readings: tuple[Reading, ...]
    ready_after: float | None = None  # created from zero and ready: seconds since the decision
    not_ready_after: float | None = None  # created but not ready within wait_ready_timeout
    replica_ready_after: float | None = None  # a scale-up ready: seconds since the call


@dataclass(frozen=True, slots=True)
class Decided:
    observed: Observed
    decision: Decision
    leading: bool  # this daemon may write (leader, or no election)
    acting: bool  # leading and not in dry run: the decision is carried out
    dry_run: bool


@dataclass(frozen=True, slots=True)
class Acted:
    decided: Decided
    attempted: bool = False  # an action was asked of the provider
    error: str | None = None  # "<action> failed: ..." when it did not happen
    cause: str | None = None  # the provider's (or the precondition's) own words
    permanent: bool = False  # retrying as is will not help

    @property
    def executed(self) -> bool:
        return self.attempted and self.error is None


@dataclass(frozen=True, slots=True)
class IntentProgress:
    """An unfinished intent (from a crash or a recreate) moved on before deciding anything."""

    kind: str
    outcome: dict[str, Any] | None = None  # `reconcile.continue_intent`'s; None: not yet
    error: str | None = None  # it could not be moved on this time

    @property
    def resolved(self) -> bool:
        return self.outcome is not None and self.error is None


@dataclass(frozen=True, slots=True)
class EvaluationResult:
    policy: str
    intent: IntentProgress | None = None
    held: str | None = None  # a pending intent this daemon may not move (standby, dry run)
    unobserved: ProviderError | None = None  # the deployment could not be read
    acted: Acted | None = None  # the full pass


def observation_of(
    deployment: DeploymentInfo | None, metrics: Mapping[str, float | None]
) -> Observation:
    """What the core sees: the deployment (absent: none, zero replicas) and the readings."""
    if deployment is None:
        return Observation(ABSENT, dict(metrics))
    return Observation(deployment.state, dict(metrics))
