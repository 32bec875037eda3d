"""The seasonal demand profile of the objective stage: arrival rate by hour of the week.

168 buckets (epoch hours modulo 168, so a UTC week), each an exponentially weighted mean over
weeks of that hour's mean arrival rate: when an hour ends, its mean is folded into its bucket
with weight `WEEK_WEIGHT`. Bucket values are kept as float32 (the value and its JSON form:
profile.py).

`forecast(profile, t)` is the bucket of hour t, scaled by min(1, ratio) where ratio is an EWMA
(`RATIO_TAU` seconds) of actual / profile-now: a day that runs below its profile (a holiday,
an outage) damps the forecast at once; a day above it needs no forecast (the reactive sizing
already covers it). Pure: the caller passes `now`.
"""

from __future__ import annotations

import math
import struct
from typing import Any, Final

from .drafts import draft
from .profile import HOURS, UNSEEN, Profile

WEEK_WEIGHT: Final = 0.3  # weight of the latest week in a bucket
RATIO_TAU: Final = 1800.0  # seconds: how fast actual / forecast follows a day that diverges
RATIO_MAX: Final = 4.0


def _f32(x: float) -> float:
    return float(struct.unpack("<f", struct.pack("<f", x))[0])


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
