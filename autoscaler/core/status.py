"""The one deployment `Status` vocabulary, and the gate: what each status does to a decision.

`Status` is the word every layer uses for a deployment's state, and `DeploymentState` the one
value that carries it with the replica counts: the provider clients build it at their edge
(`DeploymentInfo.state`, translated from each provider's own words, which stay in `raw_status`
for messages), the runtime hands that same value to the core (`Observation.deployment`), and
the capacity simulator reports its deployment as one (`simulate/deployment.py`, never
`failed`). The fake provider APIs (`fakecloud/`) speak each provider's own words on the wire,
as the real ones do. Define new words here, nowhere else.

The gate has one row per status, read by `decide` before any stage:

- `decide`: the whole pipeline runs (`ready`);
- `hold`: no action and the state untouched, with the row's reason and message
  (`initializing`, `terminating`: the provider is mid-change, wait it out);
- `failure`: the deployment-failure rule (`failure.py`: report, or recreate after a backoff);
- `zero`: the deployment is absent: create it when something asks for replicas (`zero.py`).

A status missing from the table is a programming error (tests/core/test_core_decide.py checks
the table covers the vocabulary), so `decide` looks it up without a fallback.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal, NamedTuple

from . import reasons as R

Status = Literal["ready", "initializing", "failed", "terminating", "absent"]
STATUSES: tuple[Status, ...] = ("ready", "initializing", "failed", "terminating", "absent")

Handling = Literal["decide", "hold", "failure", "zero"]


@dataclass(frozen=True, slots=True)
class DeploymentState:
    """A deployment as its provider reports it: status and replica counts.

    `replicas` is the count the provider is scaled to (0 when absent); `ready_replicas` the
    count serving, when the provider reports it (None: all of them when `ready`, else none).
    """

    status: Status
    replicas: int
    ready_replicas: int | None = None

    @property
    def ready(self) -> int:
        if self.ready_replicas is not None:
            return self.ready_replicas
        return self.replicas if self.status == "ready" else 0


ABSENT = DeploymentState("absent", 0)


class Gate(NamedTuple):
    handling: Handling
    reason: str = ""  # the reason code of a `hold`
    message: str = ""  # the message of a `hold`


GATE: Mapping[Status, Gate] = MappingProxyType(
    {
        "ready": Gate("decide"),
        "initializing": Gate(
            "hold", R.DEPLOYMENT_INITIALIZING, "deployment is initializing: waiting for ready"
        ),
        "terminating": Gate(
            "hold", R.DEPLOYMENT_TERMINATING, "deployment is terminating: waiting until it is gone"
        ),
        "failed": Gate("failure"),
        "absent": Gate("zero"),
    }
)
