"""Scale to zero and back (KEDA's activation semantics).

Activation (0 <-> 1) is separate from the scaling target (1 <-> N): the deployment is idle
while every activation metric reads at or below its threshold; it is deleted once it has been
idle for the whole `scale_to_zero.after` (counted from the first idle evaluation after the last
active one), never while a metric fails to read or a schedule window demands replicas. While
absent it is created as soon as any activation metric is above its threshold.

A policy with `scale_to_zero` but no `activation` list treats every metric as an activation
metric with threshold 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from autoscaler.policy.model import Activation, Policy, ScaleToZero

from . import reasons as R
from .recommend import metric_value
from .timefmt import duration


class Idle(NamedTuple):
    active: bool  # some activation metric above its threshold
    idle_since: float | None
    last_active: float | None
    message: str


def zero_enabled(policy: Policy) -> ScaleToZero | None:
    """The scale-to-zero settings when they apply (`replicas.min` is 0), else None."""
    if policy.scale_to_zero is not None and policy.replicas.min == 0:
        return policy.scale_to_zero
    return None


def activations(policy: Policy) -> tuple[Activation, ...]:
    stz = policy.scale_to_zero
    if stz is not None and stz.activation:
        return stz.activation
    return tuple(Activation(m.name, 0.0) for m in policy.metrics)


def activity(policy: Policy, values: Mapping[str, float | None]) -> tuple[bool, str]:
    """Whether any activation metric is above its threshold, and the readings as text."""
    parts = []
    active = False
    for act in activations(policy):
        value = metric_value(values, act.metric)
        if value is None:
            parts.append(f"{act.metric} failed")
        elif value > act.threshold:
            active = True
            parts.append(f"{act.metric}={value:g} > {act.threshold:g}")
        else:
            parts.append(f"{act.metric}={value:g} <= {act.threshold:g}")
    return active, ", ".join(parts)


def track_idle(
    policy: Policy,
    values: Mapping[str, float | None],
    any_failed: bool,
    idle_since: float | None,
    last_active: float | None,
    now: float,
) -> Idle:
    """Advance the idle clock: any active or failed reading resets it."""
    active, text = activity(policy, values)
    if active or any_failed:
        return Idle(active, None, now, text)
    return Idle(False, now if idle_since is None else idle_since, last_active, text)


def idle_for_long_enough(stz: ScaleToZero, idle_since: float | None, now: float) -> bool:
    return idle_since is not None and now - idle_since >= stz.after


def idle_message(stz: ScaleToZero, idle_since: float, now: float, text: str) -> tuple[str, str]:
    idle = now - idle_since
    if idle >= stz.after:
        return R.IDLE_TO_ZERO, f"{text}: idle {duration(idle)} >= {duration(stz.after)} -> delete"
    return R.IDLE_PENDING, f"{text}: idle {duration(idle)} of {duration(stz.after)}"
