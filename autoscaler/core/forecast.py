"""The seasonal demand profile of the objective stage: arrival rate by hour of the week.

168 buckets (epoch hours modulo 168, so a UTC week), each an exponentially weighted mean over
weeks of that hour's mean arrival rate: when an hour ends, its mean is folded into its bucket
with weight `WEEK_WEIGHT`. Bucket values are kept as float32 so the JSON form (base64 of 672
bytes) is compact and round-trips exactly.

`forecast(profile, t)` is the bucket of hour t, scaled by min(1, ratio) where ratio is an EWMA
(`RATIO_TAU` seconds) of actual / profile-now: a day that runs below its profile (a holiday,
an outage) damps the forecast at once; a day above it needs no forecast (the reactive sizing
already covers it). Pure: the caller passes `now`.
"""

from __future__ import annotations

import base64
import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .drafts import draft

HOURS = 168
UNSEEN = -1.0
WEEK_WEIGHT = 0.3  # weight of the latest week in a bucket
RATIO_TAU = 1800.0  # seconds: how fast actual / forecast follows a day that diverges
RATIO_MAX = 4.0
_PACK = struct.Struct(f"<{HOURS}f")


def _f32(x: float) -> float:
    return float(struct.unpack("<f", struct.pack("<f", x))[0])


@dataclass(frozen=True, slots=True)
class Profile:
    buckets: tuple[float, ...] = ()  # HOURS float32 rates, UNSEEN never seen; () before any
    hour: int = -1  # the epoch hour being accumulated
    hour_sum: float = 0.0
    hour_count: int = 0
    ratio: float = 1.0  # EWMA of actual / profile at the same hour
    at: float | None = None  # the last update (for the ratio's time constant)


_ProfileDraft = draft(Profile)


def _bucket(t: float) -> int:
    return math.floor(t / 3600.0) % HOURS


def update(profile: Profile, now: float, rate: float) -> Profile:
    """Fold one arrival-rate reading at `now` into the profile."""
    rate = min(max(rate, 0.0), 3.0e38)  # float32 range
    hour = math.floor(now / 3600.0)
    buckets = profile.buckets
    hour_sum, hour_count = profile.hour_sum, profile.hour_count
    if hour != profile.hour:
        if hour > profile.hour >= 0 and hour_count > 0:
            mean = hour_sum / hour_count
            values = list(buckets) if buckets else [UNSEEN] * HOURS
            i = profile.hour % HOURS
            old = values[i]
            values[i] = _f32(mean if old < 0 else (1 - WEEK_WEIGHT) * old + WEEK_WEIGHT * mean)
            buckets = tuple(values)
        hour_sum, hour_count = 0.0, 0
    ratio = profile.ratio
    expected = buckets[hour % HOURS] if buckets else UNSEEN
    if expected > 0:
        dt = RATIO_TAU if profile.at is None else min(max(now - profile.at, 0.0), RATIO_TAU)
        alpha = 1.0 - math.exp(-dt / RATIO_TAU)
        ratio += alpha * (min(rate / expected, RATIO_MAX) - ratio)
    # Profile(buckets, hour, hour_sum + rate, hour_count + 1, ratio, now), by name on a draft
    # (drafts.py: one per decision, a few times cheaper than the frozen `__init__`)
    out: Any = _ProfileDraft()
    out.buckets = buckets
    out.hour = hour
    out.hour_sum = hour_sum + rate
    out.hour_count = hour_count + 1
    out.ratio = ratio
    out.at = now
    out.__class__ = Profile
    return out


def forecast(profile: Profile, t: float) -> float | None:
    """The damped forecast arrival rate for time t; None when that hour was never seen."""
    if not profile.buckets:
        return None
    value = profile.buckets[_bucket(t)]
    if value < 0:
        return None
    return value * min(1.0, profile.ratio)


# --- JSON form ------------------------------------------------------------------------------


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


def _finite(d: Mapping[str, Any], key: str, default: float) -> float:
    v = d.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise ValueError(f"state.objective.profile.{key}: expected a finite number, got {v!r}")
    return float(v)


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
        if isinstance(v, bool) or not isinstance(v, int) or v < -1:
            raise ValueError(f"state.objective.profile.{key}: expected an integer, got {v!r}")
    at = d.get("at")
    return Profile(
        buckets,
        hour,
        _finite(d, "sum", 0.0),
        count,
        _finite(d, "ratio", 1.0),
        None if at is None else _finite(d, "at", 0.0),
    )
