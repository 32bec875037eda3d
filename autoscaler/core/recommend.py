"""Stage 1, recommend: the Kubernetes HPA replica formulas, per metric and across metrics.

- `value` / `utilization` targets: usage ratio = value / target, desired = ceil(current x ratio).
- `average_value` targets: ratio = total / (target x current), desired = ceil(total / target).
- Inside the tolerance band (ratio > 1 checks `up`, ratio < 1 checks `down`) the current
  count stands. The largest recommendation across metrics wins.
- With some metrics failed, the rest may scale up but never down (HPA's rule for missing
  metrics). From 0 replicas the ratio alone decides, as HPA does for external metrics.
- A metric without a target is an input of the objective stage only: it recommends nothing
  here, but its failed read counts like any other.

Pure arithmetic only: no state, no time, no bounds (those are later stages).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Final

from autoscaler.policy.model import Metric, Tolerance

from . import reasons as R
from .proposal import Context, Proposal, Recommendation

# Recommendations are capped so a wild metric (1e300) cannot blow up state or messages;
# far above any real replica count, and the cap keeps the formula monotone.
MAX_RECOMMENDATION: Final = 1_000_000

_new = tuple.__new__  # a NamedTuple without its Python-level `__new__` (hot path)

# Float noise (0.7 / 0.1 == 6.999999999999999, 11 / 10 - 1 > 0.1) must not add or drop a
# replica or move a reading that sits on the tolerance edge out of the band.
_EPS: Final = 1e-9


def _ceil(x: float) -> int:
    if x >= MAX_RECOMMENDATION:
        return MAX_RECOMMENDATION
    n = math.ceil(x - _EPS)
    return n if n > 0 else 0


def metric_value(values: Mapping[str, float | None], name: str) -> float | None:
    """The reading for `name`, or None when it failed (missing, null, NaN or infinite)."""
    v = values.get(name)
    if v is None or not math.isfinite(v):
        return None
    return float(v)


def failed_metrics(
    metrics: tuple[Metric, ...], values: Mapping[str, float | None]
) -> tuple[str, ...]:
    return tuple(m.name for m in metrics if metric_value(values, m.name) is None)


def recommend_metric(
    metric: Metric, value: float, current: int, tolerance: Tolerance
) -> tuple[int, bool]:
    """One metric's recommendation: (replicas, inside the tolerance band)."""
    assert metric.target is not None
    target = metric.target.value
    if value < 0.0:
        value = 0.0
    if metric.target.type == "average_value":
        if current <= 0:
            return _ceil(value / target), False
        ratio = value / (target * current)
        out = value / target
    else:
        ratio = value / target
        if current <= 0:
            return _ceil(ratio), False
        out = current * ratio
    if ratio > 1.0:
        if ratio - 1.0 <= tolerance.up + _EPS:
            return current, True
    elif 1.0 - ratio <= tolerance.down + _EPS:
        return current, True
    return _ceil(out), False


def describe(metric: Metric, value: float, current: int, desired: int, within: bool) -> str:
    """The message fragment for one metric's recommendation, with its numbers."""
    name = metric.name
    assert metric.target is not None
    target = metric.target.value
    value = max(value, 0.0)
    if metric.target.type == "average_value":
        if current <= 0:
            return f"{name}={value:g} / {target:g}/replica -> {desired}"
        ratio = value / (target * current)
        sign = ">" if ratio > 1 else "<="
        text = f"{name}={value:g} {sign} {target:g}/replica x {current}"
    else:
        ratio = value / target
        if current <= 0:
            return f"{name}={value:g} / target {target:g} -> {desired}"
        text = f"{name}={value:g} vs target {target:g} x {current}"
    if within:
        return f"{text} (ratio {ratio:.3g} within tolerance) -> {desired}"
    return f"{text} -> {desired}"


def recommend(
    metrics: tuple[Metric, ...],
    values: Mapping[str, float | None],
    current: int,
    tolerance: Tolerance,
) -> Recommendation:
    """The largest per-metric recommendation; never below `current` when a metric failed."""
    best = -1
    best_metric: Metric | None = None
    best_value = 0.0
    best_within = False
    failed: list[str] = []
    for metric in metrics:
        value = values.get(metric.name)
        if value is None or not math.isfinite(value):
            failed.append(metric.name)
            continue
        if metric.target is None:
            continue
        desired, within = recommend_metric(metric, value, current, tolerance)
        if desired > best or (desired == best and within):
            best, best_metric, best_value, best_within = desired, metric, value, within
    best_text = describe(best_metric, best_value, current, best, best_within) if best_metric else ""
    if failed:
        names = tuple(failed)
        missing = ",".join(failed)
        if best < 0:
            return Recommendation(
                current,
                R.METRICS_MISSING_NO_SCALE_DOWN,
                f"all metrics failed ({missing}): keep {current}",
                names,
            )
        if best < current:
            return Recommendation(
                current,
                R.METRICS_MISSING_NO_SCALE_DOWN,
                f"{best_text}; {missing} failed: no scale down, keep {current}",
                names,
            )
        return Recommendation(
            best, direction(best, current), f"{best_text}; {missing} failed", names
        )
    if best < 0:  # a policy without metrics: nothing asks for change
        return Recommendation(current, R.NO_CHANGE, f"no metrics: keep {current}")
    if best_within:
        return _new(Recommendation, (current, R.WITHIN_TOLERANCE, best_text, ()))
    return _new(Recommendation, (best, direction(best, current), best_text, ()))


def direction(desired: int, current: int) -> str:
    """The reason code of a change from `current` to `desired`."""
    if desired > current:
        return R.SCALE_UP
    if desired < current:
        return R.SCALE_DOWN
    return R.NO_CHANGE


# --- the stages -----------------------------------------------------------------------------

# What recommend proposes for a policy whose metrics are all objective signals: nothing (the
# objective stage ignores the proposal then).
NOTHING_PROPOSED = Recommendation(0, R.NO_CHANGE, "")

# Recommend-stage reasons worth reporting even when no action follows; the direction codes
# (scale_up / scale_down) are added from the final count instead.
_KEEP_REASONS = frozenset((R.WITHIN_TOLERANCE, R.METRICS_MISSING_NO_SCALE_DOWN))


def recommend_stage(ctx: Context, p: Proposal) -> Proposal:
    """Stage: the HPA recommendation. With an objective, only the metrics that have a target
    recommend: the others are the objective's inputs, judged there (a service time over an
    idle window is no failure)."""
    policy = ctx.policy
    metrics = policy.metrics
    if policy.objective is not None:
        for metric in metrics:
            if metric.target is not None:
                metrics = tuple(m for m in metrics if m.target is not None)
                break
        else:
            return p.recommended(NOTHING_PROPOSED)
    rec = recommend(metrics, ctx.observation.metrics, ctx.current, policy.behavior.tolerance)
    return p.recommended(rec)


def recommendation_stage(ctx: Context, p: Proposal) -> Proposal:
    """Stage: the recommendation stands (nothing settled the count, no failure rule applies):
    its message, the reasons worth reporting, and the objective's codes join the decision."""
    if p.settled or p.ruled or p.recommendation is None:
        return p
    rec = p.recommendation
    reasons = p.reasons
    if rec.reason in _KEEP_REASONS:
        reasons = (*reasons, rec.reason)
    if p.objective_reasons:
        reasons = (*reasons, *p.objective_reasons)
    return p.moved(p.replicas, reasons, (*p.parts, rec.message))
