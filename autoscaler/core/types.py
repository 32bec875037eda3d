"""Values that flow into and out of the decision core.

`Observation` is what the runtime (or replay, or the simulator) saw at `now`;
`Decision` is what the core wants done. Both are frozen values: the core never
mutates its inputs. The `Status` vocabulary and the `DeploymentState` value live in
`status.py` (re-exported here); the core's own state value (`CoreState`) lives in `state.py`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from .status import ABSENT, STATUSES, DeploymentState, Status

__all__ = [
    "ABSENT",
    "STATUSES",
    "Action",
    "Decision",
    "DeploymentState",
    "Observation",
    "Status",
]

Action = Literal["none", "scale", "create", "delete"]


@dataclass(frozen=True, slots=True)
class Observation:
    """The deployment and its metrics as seen at one instant.

    `deployment` is the provider's report as the provider client built it (the same value the
    runtime got from `DeploymentInfo.state`). `metrics` maps each policy metric name to its
    value, or to None when the read failed; a policy metric missing from the mapping counts as
    failed too.
    """

    deployment: DeploymentState
    metrics: Mapping[str, float | None]
    # The deployment's start-up time as last measured by the runtime (scale or create call to
    # a new replica ready), seconds; None until one was measured. The objective stage keeps it.
    startup_seconds: float | None = None

    @property
    def status(self) -> Status:
        return self.deployment.status

    @property
    def replicas(self) -> int:
        """The count at the provider; 0 when absent."""
        return self.deployment.replicas

    @property
    def ready(self) -> int:
        return self.deployment.ready


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do now, and why.

    `replicas` is the count the deployment should have after the decision (0 after delete;
    the current count for `none`). `reasons` are stable snake_case codes (see README);
    `message` is for humans and carries the numbers.
    """

    action: Action
    replicas: int
    reasons: tuple[str, ...]
    message: str
    desired: int | None = None  # the unclamped, unlimited recommendation, for metrics/status

    def to_json(self, t: float | None = None) -> dict[str, object]:
        out: dict[str, object] = {}
        if t is not None:
            out["t"] = t
        out.update(
            action=self.action,
            replicas=self.replicas,
            reasons=list(self.reasons),
            message=self.message,
        )
        return out
