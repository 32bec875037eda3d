"""Stage 4, clamp: the hard bounds at `now`.

Lower bound: `replicas.min` raised by the min of every active schedule window (and at least 1
while the deployment exists: providers refuse fewer; zero is the `zero` stage's business).
Upper bound: `replicas.max` lowered by the max of every active schedule window and by the
hourly cost cap, floor(max_hourly_usd / replica_hourly_usd). When they conflict the upper
bound wins: `max` and the cost cap are promises the daemon never breaks.

Bounds win over rate limits and cooldowns, as in HPA (a count outside [min, max] is
corrected at once).
"""

from __future__ import annotations

import math
from typing import NamedTuple

from autoscaler.policy.model import Cost, Policy

from . import reasons as R
from .proposal import Bounds, Context, Proposal
from .schedule import active_schedules


class Clamped(NamedTuple):
    replicas: int
    reason: str | None
    message: str


def cost_cap(cost: Cost) -> int | None:
    """The most replicas the hourly budget pays for, or None without a cap."""
    if cost.max_hourly_usd is None or not cost.replica_hourly_usd:
        return None
    return max(0, math.floor(cost.max_hourly_usd / cost.replica_hourly_usd + 1e-9))


def bounds(policy: Policy, now: float, floor_one: bool = True) -> Bounds:
    """The [lower, upper] range at `now`; `floor_one` keeps an existing deployment at >= 1."""
    lower, lower_reason = policy.replicas.min, R.MIN_REPLICAS
    upper, upper_reason = policy.replicas.max, R.MAX_REPLICAS
    schedule_min = 0
    if policy.schedules:
        for window in active_schedules(policy.schedules, now):
            if window.min is not None:
                schedule_min = max(schedule_min, window.min)
                if window.min > lower:
                    lower, lower_reason = window.min, R.SCHEDULE_MIN
            if window.max is not None and window.max < upper:
                upper, upper_reason = window.max, R.SCHEDULE_MAX
    cap = cost_cap(policy.cost)
    if cap is not None and cap < upper:
        upper, upper_reason = cap, R.COST_CAP
    floored = False
    if floor_one and lower < 1:
        lower, floored = 1, True
    if lower > upper:
        lower = upper
    return Bounds(lower, upper, lower_reason, upper_reason, schedule_min, floored)


def clamp(replicas: int, b: Bounds) -> Clamped:
    if replicas > b.upper:
        return Clamped(b.upper, b.upper_reason, f"capped at {b.upper} ({b.upper_reason})")
    if replicas < b.lower:
        if b.floored:
            # replicas.min is 0 (scale to zero): the code stays min_replicas, but the words
            # say what holds it: zero is reached by deleting, never by scaling.
            why = "a running deployment keeps at least 1; zero means deleting it"
            return Clamped(b.lower, b.lower_reason, f"raised to {b.lower} ({why})")
        return Clamped(b.lower, b.lower_reason, f"raised to {b.lower} ({b.lower_reason})")
    return Clamped(replicas, None, "")


def clamp_stage(ctx: Context, p: Proposal) -> Proposal:
    """Stage: the hard bounds, and at least 1 (zero is reached by deleting, never by scaling)."""
    if p.settled:
        return p
    b = ctx.bounds
    if b.lower <= p.replicas <= b.upper:  # the common case: inside, nothing to say
        return p if p.replicas >= 1 else p.moved(1, p.reasons, p.parts)
    cl = clamp(p.replicas, b)
    replicas = max(1, cl.replicas)
    if cl.reason is not None:
        return p.noted(cl.reason, cl.message, replicas)
    if replicas != p.replicas:
        return p.moved(replicas, p.reasons, p.parts)
    return p
