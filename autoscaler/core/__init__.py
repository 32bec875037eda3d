"""The decision core: pure functions of (policy, state, observation, now). No I/O, no clock.

`decide` runs the pipeline (see `decide.py`); `CoreState` is its memory between calls;
`REASONS` documents every reason code a decision can carry.
"""

from .decide import decide
from .reasons import REASONS
from .state import (
    CoreState,
    action_failed,
    from_dict,
    initial_state,
    to_dict,
    with_override,
    with_paused,
    with_resumed,
)
from .types import ABSENT, Decision, DeploymentState, Observation

__all__ = [
    "ABSENT",
    "REASONS",
    "CoreState",
    "Decision",
    "DeploymentState",
    "Observation",
    "action_failed",
    "decide",
    "from_dict",
    "initial_state",
    "to_dict",
    "with_override",
    "with_paused",
    "with_resumed",
]
