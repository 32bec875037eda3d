"""The pipeline: `decide(policy, state, observation, now) -> (Decision, CoreState)`.

Order: pause -> status gate (`status.GATE`: decide / hold / failure / zero) -> an expired
admin override cleared -> the stages (those the policy uses: its plan, `plan.py`). Every
stage has the shape `stage(ctx, proposal) -> proposal` (`proposal.py`) and lives in its own
module with its own table tests:

- deployment present: recommend -> objective -> idle (zero) -> override -> metric failure ->
  the recommendation stands -> panic -> stabilize -> limit -> clamp;
- deployment absent: recommend -> objective -> wake (zero) -> create.

This module only composes them and turns the last proposal into the `Decision` and the next
`CoreState` (always by replacing fields of the previous state). `now` is epoch seconds supplied
by the caller: nothing here reads a clock.
"""

from __future__ import annotations

from typing import Any

from autoscaler.policy.model import Policy

from . import reasons as R
from .clamp import bounds
from .drafts import draft
from .failure import deployment_failure
from .plan import plan_for
from .proposal import Bounds, Context, Proposal, consecutive_failures, first
from .state import CoreState, advance, evolve
from .status import GATE
from .types import Action, Decision, Observation
from .zero import zero_enabled

_ContextDraft = draft(Context)
_DecisionDraft = draft(Decision)


def decide(
    policy: Policy, state: CoreState, observation: Observation, now: float
) -> tuple[Decision, CoreState]:
    now = float(now)
    deployment = observation.deployment
    current = deployment.replicas
    if policy.paused or state.paused:
        who = "policy" if policy.paused else "admin"
        return Decision("none", current, (R.PAUSED,), f"paused ({who}): no action"), state
    gate = GATE[deployment.status]
    handling = gate.handling
    if handling == "hold":
        return Decision("none", current, (gate.reason,), gate.message), state
    if state.override is not None and now >= state.override[1]:
        state = evolve(state, override=None)
    plan = plan_for(policy)
    fixed = plan.fixed_bounds
    if handling == "decide":
        b = fixed[0] if fixed is not None else bounds(policy, now)
        ctx = _context(policy, state, observation, now, current, b)
        p = _start(ctx)
        # override_stage only acts on an admin override: most decisions skip it
        for stage in plan.present if state.override is None else plan.present_override:
            p = stage(ctx, p)
        return _present(ctx, p, plan.longest_period)
    if handling == "zero":
        b = fixed[1] if fixed is not None else bounds(policy, now, floor_one=False)
        ctx = _context(policy, state, observation, now, 0, b)
        p = _start(ctx)
        for stage in plan.absent:
            p = stage(ctx, p)
        return _absent(ctx, p)
    b = fixed[0] if fixed is not None else bounds(policy, now)
    return deployment_failure(Context(policy, state, observation, now, current, b))


def _start(ctx: Context) -> Proposal:
    """The first proposal: the current count, and the state's fields with what expired cleared."""
    state, now = ctx.state, ctx.now
    panic_until = state.panic_until
    if panic_until is not None and panic_until <= now:
        panic_until = None
    resumed_at = state.resumed_at
    if resumed_at is not None and not (
        now - resumed_at < ctx.policy.behavior.scale_down.stabilization_window
    ):
        resumed_at = None  # the window after the resume has passed
    # Idle time counts only while the idle stage watches it: a clock kept from before scale
    # to zero was switched off (min raised above 0), or across a gap in the evaluations (a
    # stopped daemon, a provider outage: `seen_at`), would delete at the first idle reading
    # after, however busy the hours in between were.
    idle_since = state.idle_since
    if idle_since is not None and (
        zero_enabled(ctx.policy) is None or _unwatched(state.seen_at, now, ctx.policy.interval)
    ):
        idle_since = None
    return first(
        ctx.current,
        state.up_history,
        state.down_history,
        panic_until,
        idle_since,
        state.last_active,
        resumed_at,
    )


# The longest gap between two evaluations that still counts as watched: a few intervals (a
# busy daemon runs late), at least a minute.
UNWATCHED_INTERVALS = 3
UNWATCHED_MIN_SECONDS = 60.0


def _unwatched(seen_at: float | None, now: float, interval: float) -> bool:
    """Whether the load went unobserved since the last evaluation (or it is unknown: a state
    saved before `seen_at` existed)."""
    if seen_at is None:
        return True
    gap = UNWATCHED_INTERVALS * interval
    return now - seen_at > (gap if gap > UNWATCHED_MIN_SECONDS else UNWATCHED_MIN_SECONDS)


def _present(ctx: Context, p: Proposal, longest: float) -> tuple[Decision, CoreState]:
    """The decision and next state for a deployment that exists: scale, delete or nothing."""
    state, now, current = ctx.state, ctx.now, ctx.current
    consecutive = consecutive_failures(ctx, p)
    if p.action == "delete":
        decision = _decision("delete", 0, p.reasons, "; ".join(p.parts), p.desired)
        return decision, evolve(
            state,
            last_action=(now, "delete"),
            prev_action=state.last_action,
            idle_since=p.idle_since,
            last_active=p.last_active,
            metric_failures=consecutive,
            panic_until=None,
            failed_since=None,
            recreates=0,
            objective=p.memory,
            seen_at=now,
        )
    target = p.replicas
    reasons = p.reasons
    events = _trim_events(state.events, now, longest)
    last_action, prev_action = state.last_action, state.prev_action
    action: Action
    if target != current:
        kind = "scale_up" if target > current else "scale_down"
        reasons = (R.SCALE_UP if target > current else R.SCALE_DOWN, *reasons)
        if longest > 0:  # only rate policies read events
            events = (*events, (now, target - current))
        last_action, prev_action = (now, kind), state.last_action
        action = "scale"
    else:
        action = "none"
        if not reasons:
            reasons = (R.NO_CHANGE,)
    decision = _decision(action, target, reasons, "; ".join(p.parts), p.desired)
    return decision, advance(
        state,
        up_history=p.up_history,
        down_history=p.down_history,
        events=events,
        last_action=last_action,
        prev_action=prev_action,
        idle_since=p.idle_since,
        last_active=p.last_active,
        metric_failures=consecutive,
        panic_until=p.panic_until,
        failed_since=None,
        recreates=0,
        resumed_at=p.resumed_at,
        objective=p.memory,
        seen_at=now,
    )


def _absent(ctx: Context, p: Proposal) -> tuple[Decision, CoreState]:
    """The decision and next state for an absent deployment: create or stay at zero."""
    state = ctx.state
    next_state = evolve(
        state,
        idle_since=None,
        last_active=p.last_active,
        metric_failures=consecutive_failures(ctx, p),
        panic_until=None,
        objective=p.memory,
        seen_at=ctx.now,
    )
    action = p.action or "none"
    decision = _decision(action, p.replicas, p.reasons, "; ".join(p.parts), p.desired)
    if action != "create":
        return decision, next_state
    return decision, evolve(
        next_state, last_action=(ctx.now, "create"), prev_action=state.last_action
    )


def _context(
    policy: Policy, state: CoreState, observation: Observation, now: float, current: int, b: Bounds
) -> Context:
    """`Context(...)` for every decision, each field stored by name on a draft (drafts.py)."""
    ctx: Any = _ContextDraft()
    ctx.policy = policy
    ctx.state = state
    ctx.observation = observation
    ctx.now = now
    ctx.current = current
    ctx.bounds = b
    ctx.__class__ = Context
    return ctx


def _decision(
    action: Action, replicas: int, reasons: tuple[str, ...], message: str, desired: int
) -> Decision:
    """`Decision(...)` for the pipeline's decisions, each field stored by name on a draft
    (drafts.py: the frozen dataclass's `__init__` costs a few times more)."""
    d: Any = _DecisionDraft()
    d.action = action
    d.replicas = replicas
    d.reasons = reasons
    d.message = message
    d.desired = desired
    d.__class__ = Decision
    return d


def _trim_events(
    events: tuple[tuple[float, int], ...], now: float, longest: float
) -> tuple[tuple[float, int], ...]:
    """Keep scale events that a rate policy can still see: t in (now - longest period, now]."""
    if not events:
        return events
    cutoff = now - longest
    if events[0][0] > cutoff and events[-1][0] <= now:
        return events
    return tuple(e for e in events if cutoff < e[0] <= now)
