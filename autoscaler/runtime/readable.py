"""How `/status` shows times: ISO 8601 instants and `4m10s` durations, never epoch floats.

The runner keeps epoch seconds (the core's `now`); these helpers turn its status pieces into
what an operator reads. The formatting itself is `autoscaler.core.timefmt` (pure).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from autoscaler.core.timefmt import duration, iso

# Core state keys holding one instant, and those holding [t, n] pairs.
_INSTANTS = ("idle_since", "last_active", "panic_until", "failed_since", "resumed_at", "seen_at")
_PAIRS = ("up_history", "down_history", "events", "last_action", "prev_action")


def stamped(entry: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A status entry with its `t` as ISO 8601."""
    if entry is None:
        return None
    out = dict(entry)
    if isinstance(out.get("t"), int | float):
        out["t"] = iso(float(out["t"]))
    return out


def readable_state(state: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The core state's JSON form with every instant as ISO 8601."""
    if state is None:
        return None
    out = dict(state)
    for key in _INSTANTS:
        if isinstance(out.get(key), int | float):
            out[key] = iso(float(out[key]))
    for key in _PAIRS:
        value = out.get(key)
        if key in ("last_action", "prev_action"):
            if isinstance(value, list) and len(value) == 2:
                out[key] = [iso(float(value[0])), value[1]]
        elif isinstance(value, list):
            out[key] = [[iso(float(t)), n] for t, n in value]
    if isinstance(out.get("override"), list):
        replicas, until = out["override"]
        out["override"] = [replicas, iso(float(until))]
    if isinstance(out.get("objective"), Mapping):
        out["objective"] = _readable_objective(out["objective"])
    return out


def _readable_objective(memory: Mapping[str, Any]) -> dict[str, Any]:
    """The objective stage's memory (`objective_memory.py`) with its instants as ISO 8601."""
    out = dict(memory)
    if isinstance(out.get("at"), int | float):
        out["at"] = iso(float(out["at"]))
    if isinstance(out.get("peaks"), list):
        out["peaks"] = [[iso(float(t)), n] for t, n in out["peaks"]]
    queue_at = out.get("queue_at")
    if isinstance(queue_at, list) and len(queue_at) == 2:
        out["queue_at"] = [iso(float(queue_at[0])), queue_at[1]]
    profile = out.get("profile")
    if isinstance(profile, Mapping) and isinstance(profile.get("at"), int | float):
        out["profile"] = {**profile, "at": iso(float(profile["at"]))}
    return out


def override_view(state: Mapping[str, Any] | None, now: float) -> dict[str, Any] | None:
    """{"replicas", "until" (ISO), "remaining" (`4m10s`)} of an unexpired admin override."""
    raw = state.get("override") if state else None
    if not isinstance(raw, list | tuple) or len(raw) != 2:
        return None
    replicas, until = raw
    if float(until) <= now:
        return None
    return {"replicas": replicas, "until": iso(float(until)), "remaining": duration(until - now)}
