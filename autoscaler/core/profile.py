"""The seasonal demand profile's value (`Profile`) and its JSON form; forecast.py folds
readings into it and forecasts from it.

168 buckets (epoch hours modulo 168, so a UTC week) of arrival rates, kept as float32 so the
JSON form (base64 of 672 bytes) is compact and round-trips exactly; `from_dict` rejects
anything else with a ValueError naming the key under `state.objective.profile`. Apart from
forecast.py so that module holds only functions (the compiled core, setup.py: a class built
as a draft stays interpreted).
"""

from __future__ import annotations

import base64
import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from .jsonread import finite, is_count

HOURS: Final = 168
UNSEEN: Final = -1.0
_PACK = struct.Struct(f"<{HOURS}f")


@dataclass(frozen=True, slots=True)
class Profile:
    buckets: tuple[float, ...] = ()  # HOURS float32 rates, UNSEEN never seen; () before any
    hour: int = -1  # the epoch hour being accumulated
    hour_sum: float = 0.0
    hour_count: int = 0
    ratio: float = 1.0  # EWMA of actual / profile at the same hour
    at: float | None = None  # the last update (for the ratio's time constant)


def to_dict(profile: Profile) -> dict[str, Any]:
    out: dict[str, Any] = {
        "hour": profile.hour,
        "sum": profile.hour_sum,
        "count": profile.hour_count,
        "ratio": profile.ratio,
        "at": profile.at,
    }
    if profile.buckets:
        out["buckets"] = base64.b64encode(_PACK.pack(*profile.buckets)).decode("ascii")
    return out


def from_dict(d: object) -> Profile:
    if not isinstance(d, Mapping):
        raise ValueError(f"state.objective.profile: expected an object, got {d!r}")
    buckets: tuple[float, ...] = ()
    raw = d.get("buckets")
    if raw is not None:
        try:
            buckets = tuple(float(x) for x in _PACK.unpack(base64.b64decode(raw, validate=True)))
        except (TypeError, ValueError, struct.error):
            raise ValueError(
                f"state.objective.profile.buckets: expected base64 of {HOURS} float32"
            ) from None
        if any(not math.isfinite(x) for x in buckets):
            raise ValueError("state.objective.profile.buckets: values must be finite")
    hour, count = d.get("hour", -1), d.get("count", 0)
    for key, v in (("hour", hour), ("count", count)):
        if not is_count(v, -1):
            raise ValueError(f"state.objective.profile.{key}: expected an integer, got {v!r}")
    at = d.get("at")
    return Profile(
        buckets,
        hour,
        finite(d.get("sum", 0.0), "state.objective.profile.sum"),
        count,
        finite(d.get("ratio", 1.0), "state.objective.profile.ratio"),
        None if at is None else finite(at, "state.objective.profile.at"),
    )
