"""The objective stage's two slow estimates (docs/objective.md): the correction factor on
the service time, learnt from observed against predicted waits, and the queue's growth rate.

- Correction: ln f moves by a share of ln(observed / predicted) per evaluation, up fast when
  waits are longer than predicted (the objective is being missed), down slowly when shorter;
  while neither wait says anything (both under `SIGNIFICANT` x the objective) it relaxes
  toward 1 with time constant `DECAY_TAU`; f stays in [CORRECTION_MIN, CORRECTION_MAX].
- Growth: an EWMA over a minute of the queue's change per second between evaluations.

Split from objective.py to keep that module to the sizing itself. Pure floats, run every
decision: `min` / `max` are written as comparisons (a builtin call costs several times more).
"""

from __future__ import annotations

import math
from typing import Final

CORRECTION_MIN: Final = 0.5
CORRECTION_MAX: Final = 4.0
# ln f moves by this share of ln(observed / predicted) per evaluation: up fast when waits are
# longer than predicted (the objective is being missed), down slowly when shorter (a wait of
# 0 at p99 says little about how close the deployment runs to its first queue).
_GAIN_UP: Final = 0.125
_GAIN_DOWN: Final = 0.03125
_DECAY_TAU: Final = 3600.0  # seconds for ln f to relax toward 0 while neither wait is significant
SIGNIFICANT: Final = 0.2  # a wait below this share of the objective says nothing about the model
_GROWTH_TAU: Final = 60.0  # seconds: the queue growth's EWMA


def queue_growth(
    before: tuple[float, float] | None, growth: float, queue: float | None, now: float
) -> float:
    """The queue's growth rate, requests/s: an EWMA (one minute) of its change per second,
    from the last one (`growth`) and the queue then (`before`: (t, requests queued))."""
    if queue is None or before is None or now <= before[0]:
        return growth
    dt = now - before[0]
    alpha = 1.0 - math.exp(-(_GROWTH_TAU if dt > _GROWTH_TAU else dt) / _GROWTH_TAU)
    return growth + alpha * (((0.0 if queue < 0.0 else queue) - before[1]) / dt - growth)


def corrected(
    f: float,
    at: float | None,
    now: float,
    ready: int,
    wait: float,
    observed: float | None,
    predicted: float,
) -> float:
    """The next correction factor after `f` (last evaluated `at`), from the wait observed
    with the `ready` replicas against the wait the model predicted for them (`predicted`,
    NaN when it was not computed); `wait` is the objective."""
    log_f = math.log(f)
    if observed is not None and ready > 0 and predicted == predicted:
        floor = SIGNIFICANT * wait
        if predicted >= floor or observed >= floor:
            eps = 0.05 * wait
            seen = 0.0 if observed < 0.0 else observed
            ratio = (seen + eps) / ((1e12 if predicted > 1e12 else predicted) + eps)
            ratio = 0.25 if ratio < 0.25 else ratio
            ratio = 4.0 if ratio > 4.0 else ratio
            log_f += (_GAIN_UP if ratio > 1.0 else _GAIN_DOWN) * math.log(ratio)
            return bounded(log_f)
    if log_f != 0.0 and at is not None and now > at:
        log_f *= math.exp(-(now - at) / _DECAY_TAU)
    return bounded(log_f)


def bounded(log_f: float) -> float:
    """e^log_f within [CORRECTION_MIN, CORRECTION_MAX]; exactly 1 when that close to it."""
    f = math.exp(log_f)
    if -1e-6 < log_f < 1e-6:
        return 1.0
    f = CORRECTION_MIN if f < CORRECTION_MIN else f
    return CORRECTION_MAX if f > CORRECTION_MAX else f
