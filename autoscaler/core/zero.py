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
from .clamp import clamp
from .proposal import Context, Proposal
from .recommend import metric_value
from .timefmt import duration, iso


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


# --- the stages -----------------------------------------------------------------------------


def idle_stage(ctx: Context, p: Proposal) -> Proposal:
    """Stage (deployment present): advance the idle clock; once idle for `scale_to_zero.after`
    settle on delete, unless an override, a schedule window or a missing create spec block it."""
    policy = ctx.policy
    stz = zero_enabled(policy)
    if stz is None:
        return p
    now = ctx.now
    idle = track_idle(
        policy, ctx.observation.metrics, bool(p.failed), p.idle_since, p.last_active, now
    )
    p = p._replace(idle_since=idle.idle_since, last_active=idle.last_active)
    idle_since = idle.idle_since
    if idle_since is None:
        return p
    code, text = idle_message(stz, idle_since, now, idle.message)
    if code == R.IDLE_TO_ZERO:
        blocked = _delete_blocked(ctx)
        if not blocked:
            return p._replace(
                replicas=0, reasons=(R.IDLE_TO_ZERO,), parts=(text,), settled=True, action="delete"
            )
        text = f"{idle.message}: idle {duration(now - idle_since)}, but {blocked}: no delete"
    return p.noted(R.IDLE_PENDING, text)


def _delete_blocked(ctx: Context) -> str:
    """What keeps an idle deployment from being deleted, or "" when nothing does."""
    if ctx.state.override is not None:
        return "an override is active"
    if ctx.bounds.schedule_min > 0:
        return f"a schedule window requires {ctx.bounds.schedule_min}"
    if ctx.policy.deployment.create is None:
        return "there is no deployment.create to come back with"
    return ""


def wake_stage(ctx: Context, p: Proposal) -> Proposal:
    """Stage (deployment absent): what asks for replicas (an override, an activation metric
    above its threshold, replicas.min, a schedule window) and how many; nothing asking
    settles on staying at zero."""
    policy = ctx.policy
    b = ctx.bounds
    active, activity_text = False, ""
    if policy.scale_to_zero is not None:
        active, activity_text = activity(policy, ctx.observation.metrics)
    if active:
        p = p._replace(last_active=ctx.now)
    rec = p.recommendation
    assert rec is not None  # recommend ran first
    override = ctx.state.override
    if override is not None:
        wanted, until = override
        return p.noted(R.OVERRIDE, f"override {wanted} until {iso(until)}", wanted)
    if active:
        p = p.noted(R.ACTIVATE_FROM_ZERO, f"{activity_text}; {rec.message}")
    if policy.replicas.min > 0:
        p = p.noted(R.BELOW_MIN, f"absent but replicas.min is {policy.replicas.min}")
    if b.schedule_min > policy.replicas.min:
        p = p.noted(R.SCHEDULE_MIN, f"absent but a schedule window requires {b.schedule_min}")
    if not p.reasons:
        text = f"absent: {activity_text}" if activity_text else "absent"
        return p._replace(
            replicas=0, reasons=(R.AT_ZERO,), parts=(text,), settled=True, action="none"
        )
    return p._replace(replicas=max(1, b.lower, rec.replicas))


def create_stage(ctx: Context, p: Proposal) -> Proposal:
    """Stage (deployment absent, something asks for replicas): create with the count clamped
    to the bounds, when the policy says how to create it."""
    if p.settled:
        return p
    if ctx.policy.deployment.create is None:
        p = p.noted(R.NO_CREATE_SPEC, "cannot create: the policy has no deployment.create", 0)
        return p._replace(settled=True, action="none")
    count = p.replicas
    cl = clamp(count, ctx.bounds)
    if cl.reason is not None and cl.replicas < count:
        p = p.noted(cl.reason, cl.message)
    if cl.replicas < 1:
        return p._replace(replicas=0, settled=True, action="none")
    p = p._replace(replicas=cl.replicas, parts=(*p.parts, f"create with {cl.replicas}"))
    return p._replace(settled=True, action="create")
