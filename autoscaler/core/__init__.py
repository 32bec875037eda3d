"""The decision core: pure functions of (policy, state, observation, now). No I/O, no clock.

`decide` runs the pipeline (see `decide.py`); `CoreState` is its memory between calls;
`REASONS` documents every reason code a decision can carry. `COMPILED` says whether this core
was compiled with mypyc (setup.py) or runs from its sources.
"""

from types import FunctionType

from .decide import decide
from .reasons import REASONS
from .state import (
    CoreState,
    action_failed,
    from_dict,
    initial_state,
    times_after,
    to_dict,
    with_override,
    with_paused,
    with_resumed,
)
from .types import ABSENT, Decision, DeploymentState, Observation

# A compiled function is a builtin, not a Python function.
COMPILED = not isinstance(decide, FunctionType)

__all__ = [
    "ABSENT",
    "COMPILED",
    "REASONS",
    "CoreState",
    "Decision",
    "DeploymentState",
    "Observation",
    "action_failed",
    "decide",
    "from_dict",
    "initial_state",
    "times_after",
    "to_dict",
    "with_override",
    "with_paused",
    "with_resumed",
]
