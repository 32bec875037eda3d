"""How the deployment's status at the provider gates a decision (rules as data).

`initializing` and `terminating` mean "wait": no action, state untouched. `failed` is
reported (and maybe recreated: see `failure.py`). `absent` goes to the `zero` stage and
`ready` through the whole pipeline.
"""

from __future__ import annotations

from . import reasons as R

WAIT_REASONS: dict[str, tuple[str, str]] = {
    "initializing": (R.DEPLOYMENT_INITIALIZING, "deployment is initializing: waiting for ready"),
    "terminating": (
        R.DEPLOYMENT_TERMINATING,
        "deployment is terminating: waiting until it is gone",
    ),
}
