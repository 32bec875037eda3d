"""The pipeline: `decide(policy, state, observation, now) -> (Decision, CoreState)`.

Order: pause -> status (initializing / terminating wait, failed, absent) -> admin override ->
zero (idle clock, delete) -> metric failure rule -> recommend -> objective (when the policy
states one: max with recommend) -> stabilize -> limit -> clamp.
Each stage is a pure function in its own module returning a value, a reason code and a
message fragment; this module only wires them and builds the next state. `now` is epoch
seconds supplied by the caller: nothing here reads a clock.
"""

from __future__ import annotations

from collections.abc import Callable

from autoscaler.policy.model import Behavior, Metric, Policy

from . import reasons as R
from .clamp import bounds, clamp
from .failure import metric_failure_rule, recreate_delay
from .limit import is_panic, limit
from .objective import ObjectiveMemory, Seen, size
from .recommend import Recommendation, recommend
from .stabilize import record, stabilize
from .state import CoreState, evolve
from .status import GATE, Handling
from .timefmt import duration, iso
from .types import Action, Decision, Observation
from .zero import activity, idle_message, track_idle, zero_enabled


def decide(
    policy: Policy, state: CoreState, observation: Observation, now: float
) -> tuple[Decision, CoreState]:
    now = float(now)
    current = observation.replicas
    if policy.paused or state.paused:
        who = "policy" if policy.paused else "admin"
        return Decision("none", current, (R.PAUSED,), f"paused ({who}): no action"), state
    gate = GATE[observation.status]
    if gate.handling == "hold":
        return Decision("none", current, (gate.reason,), gate.message), state
    if state.override is not None and now >= state.override[1]:
        state = evolve(state, override=None)
    return _HANDLERS[gate.handling](policy, state, observation, now)


def _ready(
    policy: Policy, state: CoreState, observation: Observation, now: float
) -> tuple[Decision, CoreState]:
    current = observation.replicas
    values = observation.metrics
    behavior = policy.behavior
    up, down = behavior.scale_up, behavior.scale_down
    rec, objective_reasons, memory = _recommend(policy, state, observation, current, now)
    raw = rec.replicas
    failed = rec.failed
    consecutive = state.metric_failures + 1 if failed else 0
    b = bounds(policy, now)
    reasons: list[str] = []
    parts: list[str] = []
    # A "keep current because metrics failed" is no recommendation: recording it would stretch
    # the down window over the outage (HPA records nothing then either).
    remember = rec.reason != R.METRICS_MISSING_NO_SCALE_DOWN

    idle_since, last_active = state.idle_since, state.last_active
    stz = zero_enabled(policy)
    if stz is not None:
        idle = track_idle(policy, values, bool(failed), idle_since, last_active, now)
        idle_since, last_active = idle.idle_since, idle.last_active
        if idle_since is not None:
            code, text = idle_message(stz, idle_since, now, idle.message)
            blocked = ""
            if code == R.IDLE_TO_ZERO:
                if state.override is not None:
                    blocked = "an override is active"
                elif b.schedule_min > 0:
                    blocked = f"a schedule window requires {b.schedule_min}"
                elif policy.deployment.create is None:
                    blocked = "there is no deployment.create to come back with"
            if code == R.IDLE_TO_ZERO and not blocked:
                decision = Decision("delete", 0, (R.IDLE_TO_ZERO,), text, raw)
                return decision, evolve(
                    state,
                    last_action=(now, "delete"),
                    prev_action=state.last_action,
                    idle_since=idle_since,
                    last_active=last_active,
                    metric_failures=consecutive,
                    panic_until=None,
                    failed_since=None,
                    recreates=0,
                    objective=memory,
                )
            reasons.append(R.IDLE_PENDING)
            if blocked:
                idle_for = now - idle_since
                text = f"{idle.message}: idle {duration(idle_for)}, but {blocked}: no delete"
            parts.append(text)

    panic_until = state.panic_until
    if panic_until is not None and panic_until <= now:
        panic_until = None
    up_history, down_history = state.up_history, state.down_history
    resumed_at = state.resumed_at
    if resumed_at is not None and not now - resumed_at < down.stabilization_window:
        resumed_at = None  # the window after the resume has passed

    if state.override is not None:
        wanted, until = state.override
        reasons.insert(0, R.OVERRIDE)
        parts.insert(0, f"override {wanted} until {iso(until)}")
        value = raw if remember else None
        up_history = record(up_history, now, up.stabilization_window, value, False)
        down_history = record(down_history, now, down.stabilization_window, value, True)
        proposed = wanted
        if proposed > b.upper:
            reasons.append(b.upper_reason)
            parts.append(f"capped at {b.upper} ({b.upper_reason})")
            proposed = b.upper
        target = max(1, proposed)
    else:
        rule = metric_failure_rule(policy.on_metric_failure, consecutive, current, failed)
        if rule is not None:
            reasons.append(rule.reason)
            parts.append(rule.message)
            value = raw if remember else None
            up_history = record(up_history, now, up.stabilization_window, value, False)
            down_history = record(down_history, now, down.stabilization_window, value, True)
            proposed = rule.replicas
            panicking = False
        else:
            parts.append(rec.message)
            if rec.reason in _KEEP_REASONS:
                reasons.append(rec.reason)
            reasons.extend(objective_reasons)
            panicking = is_panic(behavior.panic, raw, current, observation.ready)
            if panicking and behavior.panic is not None:
                panic_until = now + behavior.panic.hold
                reasons.append(R.PANIC)
                parts.append(
                    f"panic: {raw} >= {behavior.panic.threshold:g} x "
                    f"{max(1, observation.ready)} ready"
                )
            st = stabilize(
                current,
                raw,
                now,
                up.stabilization_window,
                down.stabilization_window,
                up_history,
                down_history,
                skip_up=panicking,
                remember=remember,
            )
            up_history, down_history = st.up_history, st.down_history
            proposed = st.replicas
            if st.reason is not None:
                reasons.append(st.reason)
                parts.append(st.message)
            if resumed_at is not None and proposed < current:
                proposed = current
                if st.reason != R.STABILIZED_DOWN:
                    reasons.append(R.STABILIZED_DOWN)
                parts.append(
                    f"held at {current}: resumed {duration(now - resumed_at)} ago, scale-down "
                    f"waits out the {duration(down.stabilization_window)} window"
                )
        last_at = state.last_action[0] if state.last_action is not None else None
        lim = limit(current, proposed, now, up, down, state.events, last_at, panicking, panic_until)
        if lim.reason is not None:
            reasons.append(lim.reason)
            parts.append(lim.message)
        cl = clamp(lim.replicas, b)
        if cl.reason is not None:
            reasons.append(cl.reason)
            parts.append(cl.message)
        target = max(1, cl.replicas)

    longest = _longest_period(behavior)
    events = _trim_events(state.events, now, longest)
    last_action, prev_action = state.last_action, state.prev_action
    action: Action
    if target != current:
        kind = "scale_up" if target > current else "scale_down"
        reasons.insert(0, R.SCALE_UP if target > current else R.SCALE_DOWN)
        if longest > 0:  # only rate policies read events
            events = (*events, (now, target - current))
        last_action, prev_action = (now, kind), state.last_action
        action = "scale"
    else:
        action = "none"
        if not reasons:
            reasons.append(R.NO_CHANGE)
    decision = Decision(action, target, tuple(reasons), "; ".join(parts), raw)
    return decision, evolve(
        state,
        up_history=up_history,
        down_history=down_history,
        events=events,
        last_action=last_action,
        prev_action=prev_action,
        idle_since=idle_since,
        last_active=last_active,
        metric_failures=consecutive,
        panic_until=panic_until,
        failed_since=None,
        recreates=0,
        resumed_at=resumed_at,
        objective=memory,
    )


def _recommend(
    policy: Policy, state: CoreState, observation: Observation, current: int, now: float
) -> tuple[Recommendation, tuple[str, ...], ObjectiveMemory | None]:
    """The recommend stage, then the objective stage when the policy states an objective:
    (recommendation, objective reason codes, the objective's next memory)."""
    tolerance = policy.behavior.tolerance
    objective = policy.objective
    if objective is None:
        return recommend(policy.metrics, observation.metrics, current, tolerance), (), None
    # Signals without a target are the objective's inputs: their reads are judged there
    # (a service time over an idle window is no failure), not by the HPA formulas.
    proposal = _NOTHING_PROPOSED
    targeted: tuple[Metric, ...] = ()
    for metric in policy.metrics:
        if metric.target is not None:
            targeted = tuple(m for m in policy.metrics if m.target is not None)
            proposal = recommend(targeted, observation.metrics, current, tolerance)
            break
    seen = Seen(
        observation.metrics,
        current,
        observation.ready,
        now,
        observation.startup_seconds,
        bool(targeted),
    )
    return size(objective, state.objective or ObjectiveMemory(), proposal, seen)


# What recommend proposes for a policy whose metrics are all objective signals: nothing (the
# objective stage ignores the proposal then).
_NOTHING_PROPOSED = Recommendation(0, R.NO_CHANGE, "")

# Recommend-stage reasons worth reporting even when no action follows; the direction codes
# (scale_up / scale_down) are added from the final count instead.
_KEEP_REASONS = frozenset((R.WITHIN_TOLERANCE, R.METRICS_MISSING_NO_SCALE_DOWN))


def _absent(
    policy: Policy, state: CoreState, observation: Observation, now: float
) -> tuple[Decision, CoreState]:
    values = observation.metrics
    rec, _, memory = _recommend(policy, state, observation, 0, now)
    failed = rec.failed
    consecutive = state.metric_failures + 1 if failed else 0
    b = bounds(policy, now, floor_one=False)
    active, activity_text = False, ""
    if policy.scale_to_zero is not None:
        active, activity_text = activity(policy, values)
    last_active = now if active else state.last_active
    reasons: list[str] = []
    parts: list[str] = []
    if state.override is not None:
        wanted, until = state.override
        reasons.append(R.OVERRIDE)
        parts.append(f"override {wanted} until {iso(until)}")
        count = wanted
    else:
        if active:
            reasons.append(R.ACTIVATE_FROM_ZERO)
            parts.append(f"{activity_text}; {rec.message}")
        if policy.replicas.min > 0:
            reasons.append(R.BELOW_MIN)
            parts.append(f"absent but replicas.min is {policy.replicas.min}")
        if b.schedule_min > policy.replicas.min:
            reasons.append(R.SCHEDULE_MIN)
            parts.append(f"absent but a schedule window requires {b.schedule_min}")
        count = max(1, b.lower, rec.replicas)
    next_state = evolve(
        state,
        idle_since=None,
        last_active=last_active,
        metric_failures=consecutive,
        panic_until=None,
        objective=memory,
    )
    if not reasons:
        text = f"absent: {activity_text}" if activity_text else "absent"
        return Decision("none", 0, (R.AT_ZERO,), text, rec.replicas), next_state
    if policy.deployment.create is None:
        reasons.append(R.NO_CREATE_SPEC)
        parts.append("cannot create: the policy has no deployment.create")
        return Decision("none", 0, tuple(reasons), "; ".join(parts), rec.replicas), next_state
    cl = clamp(count, b)
    if cl.reason is not None and cl.replicas < count:
        reasons.append(cl.reason)
        parts.append(cl.message)
    if cl.replicas < 1:
        return Decision("none", 0, tuple(reasons), "; ".join(parts), rec.replicas), next_state
    parts.append(f"create with {cl.replicas}")
    decision = Decision("create", cl.replicas, tuple(reasons), "; ".join(parts), rec.replicas)
    return decision, evolve(next_state, last_action=(now, "create"), prev_action=state.last_action)


def _failed(
    policy: Policy, state: CoreState, observation: Observation, now: float
) -> tuple[Decision, CoreState]:
    current = observation.replicas
    rule = policy.on_deployment_failure
    failed_since = state.failed_since if state.failed_since is not None else now
    waiting = evolve(state, failed_since=failed_since)
    if rule.action != "recreate":
        text = "deployment failed (on_deployment_failure: report)"
        return Decision("none", current, (R.DEPLOYMENT_FAILED,), text), waiting
    if policy.deployment.create is None:
        text = "deployment failed; cannot recreate: the policy has no deployment.create"
        return Decision("none", current, (R.DEPLOYMENT_FAILED, R.NO_CREATE_SPEC), text), waiting
    delay = recreate_delay(rule, state.recreates)
    waited = now - failed_since
    if waited < delay:
        text = (
            f"deployment failed {duration(waited)} ago; recreate attempt {state.recreates + 1} "
            f"after {duration(delay)}"
        )
        return Decision("none", current, (R.DEPLOYMENT_FAILED, R.RECREATE_BACKOFF), text), waiting
    b = bounds(policy, now)
    count = clamp(max(current, 1), b).replicas
    text = (
        f"deployment failed {duration(waited)} ago: delete and create again with {count} "
        f"(attempt {state.recreates + 1})"
    )
    decision = Decision("create", count, (R.DEPLOYMENT_FAILED, R.RECREATE), text)
    return decision, evolve(
        state,
        failed_since=None,
        recreates=state.recreates + 1,
        last_action=(now, "create"),
        prev_action=state.last_action,
    )


_HANDLERS: dict[
    Handling, Callable[[Policy, CoreState, Observation, float], tuple[Decision, CoreState]]
] = {"decide": _ready, "failure": _failed, "zero": _absent}


def _longest_period(behavior: Behavior) -> float:
    longest = 0.0
    for rules in (behavior.scale_up, behavior.scale_down):
        for p in rules.policies:
            if p.period > longest:
                longest = p.period
    return longest


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
