"""The one deployment `Status` vocabulary, and the gate: what each status does to a decision.

`Status` is the word every layer uses for a deployment's state: the core (`Observation`),
the provider clients (`DeploymentInfo`, translated at the edge from each provider's own words,
which stay in `raw_status` for messages), the provider simulators (`sim/state.py`: these words
plus `gone` for a record deleted for good) and the capacity simulator (`simulate`, which never
reports `failed`). Define new words here, nowhere else.

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
from types import MappingProxyType
from typing import Literal, NamedTuple

from . import reasons as R

Status = Literal["ready", "initializing", "failed", "terminating", "absent"]
STATUSES: tuple[Status, ...] = ("ready", "initializing", "failed", "terminating", "absent")

Handling = Literal["decide", "hold", "failure", "zero"]


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
