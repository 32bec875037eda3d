"""How `/status` shows times: ISO 8601 instants and `4m10s` durations, never epoch floats.

The runner keeps epoch seconds (the core's `now`); these helpers turn its status pieces into
what an operator reads. The formatting itself is `autoscaler.core.timefmt` (pure).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from autoscaler.core.timefmt import duration, iso

# Core state keys holding one instant, a (t, x) pair, and a list of [t, n] pairs; the same
# for the objective stage's memory (`objective_memory.py`) and its demand profile.
_INSTANTS = ("idle_since", "last_active", "panic_until", "failed_since", "resumed_at", "seen_at")
_PAIRS = ("last_action", "prev_action")
_LISTS = ("up_history", "down_history", "events")


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
    out = _with_iso(state, _INSTANTS, _PAIRS, _LISTS)
    if isinstance(out.get("override"), list):
        replicas, until = out["override"]
        out["override"] = [replicas, iso(float(until))]
    memory = out.get("objective")
    if isinstance(memory, Mapping):
        memory = _with_iso(memory, ("at", "unread_since"), ("queue_at",), ("peaks",))
        if isinstance(memory.get("profile"), Mapping):
            memory["profile"] = _with_iso(memory["profile"], ("at",))
        out["objective"] = memory
    return out


def _with_iso(
    d: Mapping[str, Any],
    instants: tuple[str, ...],
    pairs: tuple[str, ...] = (),
    lists: tuple[str, ...] = (),
) -> dict[str, Any]:
    """A copy of `d` with its instants as ISO 8601: each of `instants` a number, each of `pairs`
    a [t, x], each of `lists` a list of [t, n] (what is not of that shape stays as it is)."""
    out = dict(d)
    for key in instants:
        if isinstance(out.get(key), int | float):
            out[key] = iso(float(out[key]))
    for key in pairs:
        value = out.get(key)
        if isinstance(value, list) and len(value) == 2:
            out[key] = [iso(float(value[0])), value[1]]
    for key in lists:
        if isinstance(out.get(key), list):
            out[key] = [[iso(float(t)), n] for t, n in out[key]]
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
