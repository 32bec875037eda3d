"""Stage 3, limit: how fast the count may move (HPA rate policies, cooldowns, panic).

- Rate policies port HPA's `calculateScaleUpLimitWithScalingRules` and
  `calculateScaleDownLimitWithBehaviors`: each policy allows `replicas` or `percent` of the
  count at the start of its period, that start being the current count minus the changes
  recorded inside the period; `select: max` takes the most permissive policy, `min` the least,
  `disabled` forbids moving in that direction at all. No policies means no limit.
- Cooldowns (AWS Application Auto Scaling style): after the last action, wait
  `scale_up.cooldown` before scaling up and `scale_down.cooldown` before scaling down.
- Panic (Knative KPA): an instant recommendation >= `threshold` x ready replicas skips the up
  window and the up cooldown and blocks scale-down until `hold` has passed.

Scale events are `(t, change)` pairs (change > 0 up, < 0 down). Bounds are not applied here.
"""

from __future__ import annotations

import math
from typing import Final, NamedTuple

from autoscaler.policy.model import Panic, RatePolicy, ScalingRules

from . import reasons as R
from .proposal import Context, Proposal
from .timefmt import duration

Events = tuple[tuple[float, int], ...]

UNLIMITED: Final = 2**31 - 1  # what an empty policy list allows (HPA's MaxInt32)


class Limited(NamedTuple):
    replicas: int
    reason: str | None
    message: str


def change_in_period(events: Events, now: float, period: float) -> int:
    """Net replica change recorded in (now - period, now] (HPA's getReplicasChangePerPeriod)."""
    cutoff = now - period
    return sum(change for t, change in events if t > cutoff)


def scale_up_limit(
    current: int, events: Events, now: float, rules: ScalingRules
) -> tuple[int, str]:
    """The highest count the up policies allow now, and which policy set it."""
    if rules.select == "disabled":
        return current, "disabled"
    best: int | None = None
    which = ""
    for policy in rules.policies:
        start = current - change_in_period(events, now, policy.period)
        if policy.type == "replicas":
            proposed = start + policy.value
        else:
            # rounded up, or a small count could never grow by a percentage
            proposed = math.ceil(start * (1 + policy.value / 100) - 1e-9)
        if (
            best is None
            or (rules.select == "max" and proposed > best)
            or (rules.select == "min" and proposed < best)
        ):
            best, which = proposed, _named(policy)
    if best is None:
        return UNLIMITED, "none"
    return max(best, current), which


def scale_down_limit(
    current: int, events: Events, now: float, rules: ScalingRules
) -> tuple[int, str]:
    """The lowest count the down policies allow now, and which policy set it."""
    if rules.select == "disabled":
        return current, "disabled"
    best: int | None = None
    which = ""
    for policy in rules.policies:
        start = current - change_in_period(events, now, policy.period)
        if policy.type == "replicas":
            proposed = start - policy.value
        else:
            proposed = int(start * (1 - policy.value / 100))
        if (
            best is None
            or (rules.select == "max" and proposed < best)
            or (rules.select == "min" and proposed > best)
        ):
            best, which = proposed, _named(policy)
    if best is None:
        return 0, "none"
    return min(best, current), which


def _named(policy: RatePolicy) -> str:
    return f"{policy.type} policy ({policy.value}/{duration(policy.period)})"


def is_panic(panic: Panic | None, desired: int, current: int, ready: int) -> bool:
    """Knative's panic condition on this evaluation's own (unstabilized) recommendation."""
    if panic is None or desired <= current:
        return False
    return desired >= panic.threshold * max(1, ready)


def limit(
    current: int,
    proposed: int,
    now: float,
    up: ScalingRules,
    down: ScalingRules,
    events: Events,
    last_action_at: float | None,
    panicking: bool,
    panic_until: float | None,
) -> Limited:
    """Apply cooldowns, panic hold and rate policies to the stabilized `proposed` count."""
    if proposed > current:
        if not panicking and last_action_at is not None and up.cooldown > 0:
            since = now - last_action_at
            if since < up.cooldown:
                return Limited(
                    current,
                    R.COOLDOWN_UP,
                    f"cooldown: {duration(since)} since the last action < {duration(up.cooldown)}, "
                    f"keep {current}",
                )
        ceiling, which = scale_up_limit(current, events, now, up)
        if which == "disabled":
            return Limited(current, R.SCALE_UP_DISABLED, f"scale_up disabled, keep {current}")
        if proposed > ceiling:
            return Limited(ceiling, R.RATE_LIMITED_UP, f"limited by {which} to {ceiling}")
        return Limited(proposed, None, "")
    if proposed < current:
        if panic_until is not None and now < panic_until:
            return Limited(
                current,
                R.PANIC_HOLD,
                f"panic hold for {duration(panic_until - now)} more: keep {current}",
            )
        if last_action_at is not None and down.cooldown > 0:
            since = now - last_action_at
            if since < down.cooldown:
                return Limited(
                    current,
                    R.COOLDOWN_DOWN,
                    f"cooldown: {duration(since)} since the last action < "
                    f"{duration(down.cooldown)}, "
                    f"keep {current}",
                )
        floor, which = scale_down_limit(current, events, now, down)
        if which == "disabled":
            return Limited(current, R.SCALE_DOWN_DISABLED, f"scale_down disabled, keep {current}")
        if proposed < floor:
            return Limited(floor, R.RATE_LIMITED_DOWN, f"limited by {which} to {floor}")
        return Limited(proposed, None, "")
    return Limited(proposed, None, "")


# --- the stages -----------------------------------------------------------------------------


def panic_stage(ctx: Context, p: Proposal) -> Proposal:
    """Stage: a burst (this evaluation's recommendation >= threshold x ready) skips the up
    window and the up cooldown, and blocks scale-down for `panic.hold`."""
    panic = ctx.policy.behavior.panic
    if p.settled or p.ruled or panic is None:
        return p
    raw = p.desired
    ready = ctx.observation.ready
    if not is_panic(panic, raw, ctx.current, ready):
        return p
    p = p.noted(R.PANIC, f"panic: {raw} >= {panic.threshold:g} x {max(1, ready)} ready")
    return p._replace(panicking=True, panic_until=ctx.now + panic.hold)


def limit_stage(ctx: Context, p: Proposal) -> Proposal:
    """Stage: cooldowns, the panic hold and the rate policies."""
    if p.settled or p.replicas == ctx.current:  # no move: nothing to limit
        return p
    state = ctx.state
    behavior = ctx.policy.behavior
    last_at = state.last_action[0] if state.last_action is not None else None
    lim = limit(
        ctx.current,
        p.replicas,
        ctx.now,
        behavior.scale_up,
        behavior.scale_down,
        state.events,
        last_at,
        p.panicking,
        p.panic_until,
    )
    if lim.reason is not None:
        return p.noted(lim.reason, lim.message, lim.replicas)
    if lim.replicas != p.replicas:
        return p.moved(lim.replicas, p.reasons, p.parts)
    return p
