"""The deployment status gate: what each status at the provider does to a decision (data).

One row per status of the vocabulary (`types.STATUSES`), read by `decide` before any stage:

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

Handling = Literal["decide", "hold", "failure", "zero"]


class Gate(NamedTuple):
    handling: Handling
    reason: str = ""  # the reason code of a `hold`
    message: str = ""  # the message of a `hold`


GATE: Mapping[str, Gate] = MappingProxyType(
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
