"""`/status` shows the core state's instants as ISO 8601, never as epoch floats: every time
field of the state, the objective stage's memory included (a field added to the state without
its line in `readable.py` fails here, not in a slow daemon test)."""

from __future__ import annotations

import json
import re

from autoscaler.core import initial_state
from autoscaler.core.objective_memory import ObjectiveMemory
from autoscaler.core.profile import Profile
from autoscaler.core.state import evolve
from autoscaler.runtime.readable import readable_state

T = 1_796_188_846.4359586
EPOCH_FLOAT = re.compile(r"\b1[0-9]{9}\.[0-9]+\b")


def test_every_instant_of_the_state_reads_as_iso() -> None:
    memory = ObjectiveMemory(
        correction=0.9,
        startup=180.0,
        peaks=((T, 3), (T + 45.0, 4)),
        profile=Profile((), 498941, 12.5, 5, 1.0, T),
        at=T,
        queue_at=(T, 7.0),
        growth=0.5,
        service=4.0,
        unread_since=T,
    )
    state = evolve(
        initial_state(),
        up_history=((T, 2),),
        down_history=((T, 3),),
        events=((T, 1),),
        last_action=(T, "scale_up"),
        prev_action=(T - 60.0, "scale_down"),
        idle_since=T,
        last_active=T,
        panic_until=T + 60.0,
        failed_since=T,
        override=(3, T + 600.0),
        resumed_at=T,
        objective=memory,
        seen_at=T,
    )
    shown = json.dumps(readable_state(state.to_dict()))
    assert not EPOCH_FLOAT.search(shown), shown
    assert "2026-" in shown
