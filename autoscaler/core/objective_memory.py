"""The objective stage's memory (`ObjectiveMemory`) and its JSON form.

`memory_to_dict` / `memory_from_dict` run inside `CoreState.to_dict` / `from_dict` (state.py):
the form round-trips exactly, and `memory_from_dict` rejects anything else with a ValueError
naming the key under `state.objective`. Apart from objective.py (the sizing) so the state and
the pipeline's values can hold the memory without importing a stage.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .correction import CORRECTION_MAX, CORRECTION_MIN
from .jsonread import finite, is_count, is_finite_number
from .peaks import MAX_PEAKS, Peaks
from .profile import Profile
from .profile import from_dict as profile_from_dict
from .profile import to_dict as profile_to_dict


@dataclass(frozen=True, slots=True)
class ObjectiveMemory:
    """What the objective stage keeps between evaluations (inside `CoreState.objective`)."""

    correction: float = 1.0  # factor on the service time, within correction.py's bounds
    startup: float | None = None  # the last measured start-up time, seconds
    peaks: Peaks = ()  # (slot start, count sized) over the last start-up time, quarter slots
    profile: Profile = field(default_factory=Profile)
    at: float | None = None  # the last evaluation
    # (t, requests queued) at the last evaluation, and the queue's growth (requests/s, EWMA
    # over a minute; negative when it drains): arrivals = requests served + growth.
    queue_at: tuple[float, float] | None = None
    growth: float = 0.0
    service: float | None = None  # the last service time read, seconds
    # The first evaluation of the current stretch with traffic but no service time read (no
    # request finished in its window yet): the stretch is excused for a while (objective.py).
    unread_since: float | None = None


def memory_to_dict(memory: ObjectiveMemory) -> dict[str, Any]:
    return {
        "correction": memory.correction,
        "startup": memory.startup,
        "peaks": [[t, n] for t, n in memory.peaks],
        "profile": profile_to_dict(memory.profile),
        "at": memory.at,
        "queue_at": list(memory.queue_at) if memory.queue_at is not None else None,
        "growth": memory.growth,
        "service": memory.service,
        "unread_since": memory.unread_since,
    }


def _number(d: Mapping[str, Any], key: str) -> float | None:
    """`d[key]` as a float; None when absent or null."""
    v = d.get(key)
    return None if v is None else finite(v, f"state.objective.{key}")


def memory_from_dict(d: object) -> ObjectiveMemory:
    if not isinstance(d, Mapping):
        raise ValueError(f"state.objective: expected an object, got {d!r}")
    correction = _number(d, "correction")
    if correction is None:
        correction = 1.0
    if not CORRECTION_MIN <= correction <= CORRECTION_MAX:
        raise ValueError(
            f"state.objective.correction: expected [{CORRECTION_MIN}, {CORRECTION_MAX}], "
            f"got {correction!r}"
        )
    raw = d.get("peaks", [])
    if not isinstance(raw, list) or len(raw) > MAX_PEAKS:
        raise ValueError(f"state.objective.peaks: expected at most {MAX_PEAKS} [t, n] pairs")
    peaks = []
    for item in raw:
        if (
            not isinstance(item, list)
            or len(item) != 2
            or not is_finite_number(item[0])
            or not is_count(item[1])
        ):
            raise ValueError(f"state.objective.peaks: expected [t, n >= 0], got {item!r}")
        peaks.append((float(item[0]), item[1]))
    return ObjectiveMemory(
        correction,
        _number(d, "startup"),
        tuple(peaks),
        profile_from_dict(d.get("profile", {})),
        _number(d, "at"),
        _queue_at(d.get("queue_at")),
        _number(d, "growth") or 0.0,
        _service(d),
        _number(d, "unread_since"),
    )


def _service(d: Mapping[str, Any]) -> float | None:
    v = _number(d, "service")
    if v is not None and v < 0:
        raise ValueError(f"state.objective.service: expected seconds >= 0, got {v!r}")
    return v


def _queue_at(v: object) -> tuple[float, float] | None:
    if v is None:
        return None
    if not isinstance(v, list) or len(v) != 2 or not all(is_finite_number(x) and x >= 0 for x in v):
        raise ValueError(f"state.objective.queue_at: expected [t, queued >= 0], got {v!r}")
    return (float(v[0]), float(v[1]))
