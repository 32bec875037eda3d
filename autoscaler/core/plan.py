"""A policy's plan: the stages it uses and the constants every decision of it reads.

`decide` runs the same stages for every policy, but most policies switch several off (no
objective, no scale to zero, no panic): those stages would only return the proposal untouched.
The plan lists just the stages that can act, once per policy, with what does not depend on
`now` worked out ahead (the longest rate period; the bounds when no schedule window moves
them). Policies are frozen, so a plan never goes stale; plans are kept by the policy object's
identity in a bounded cache. The bound is above the largest fleet one daemon runs (10,000
policies, docs/ha.md): a daemon evaluates its policies in turn, so a cache smaller than the
fleet would be emptied before any plan was used twice. A reload makes new policy objects; the
cache is emptied when full, so the old ones are let go.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from autoscaler.policy.model import Policy

from .clamp import bounds, clamp_stage
from .failure import metric_failure_stage
from .limit import limit_stage, panic_stage
from .objective import objective_stage
from .override import override_stage
from .proposal import Bounds, Context, Proposal
from .recommend import recommend_stage, recommendation_stage
from .stabilize import stabilize_stage
from .zero import create_stage, idle_stage, wake_stage, zero_enabled

Stage = Callable[[Context, Proposal], Proposal]

# Every stage, in order; a plan keeps those its policy can use.
PRESENT: tuple[Stage, ...] = (
    recommend_stage,
    objective_stage,
    idle_stage,
    override_stage,
    metric_failure_stage,
    recommendation_stage,
    panic_stage,
    stabilize_stage,
    limit_stage,
    clamp_stage,
)
ABSENT: tuple[Stage, ...] = (recommend_stage, objective_stage, wake_stage, create_stage)

_CACHE_SIZE = 32_768  # plans of a few hundred bytes: ~10 MB at the most


@dataclass(frozen=True, slots=True)
class Plan:  # made once per policy, read every decision: slots are the fast attribute path
    policy: Policy  # held so the identity the cache is keyed by is never reused meanwhile
    present: tuple[Stage, ...]  # without override_stage: for states with no admin override
    present_override: tuple[Stage, ...]  # with it
    absent: tuple[Stage, ...]
    longest_period: float  # the longest rate-policy period (0: no rate policy reads events)
    # The bounds (present, absent) when no schedule window can move them, else None.
    fixed_bounds: tuple[Bounds, Bounds] | None


def make_plan(policy: Policy) -> Plan:
    unused: set[Stage] = set()
    if policy.objective is None:
        unused.add(objective_stage)
    elif all(m.target is None for m in policy.metrics):
        unused.add(recommend_stage)  # it would propose nothing: objective_stage knows that
    if zero_enabled(policy) is None:
        unused.add(idle_stage)
    if policy.behavior.panic is None:
        unused.add(panic_stage)
    present_override = tuple(s for s in PRESENT if s not in unused)
    present = tuple(s for s in present_override if s is not override_stage)
    absent = tuple(s for s in ABSENT if s not in unused)
    longest = 0.0
    for rules in (policy.behavior.scale_up, policy.behavior.scale_down):
        for rate in rules.policies:
            if rate.period > longest:
                longest = rate.period
    fixed = None
    if not policy.schedules:  # `now` only reaches the bounds through schedule windows
        fixed = (bounds(policy, 0.0), bounds(policy, 0.0, floor_one=False))
    return Plan(policy, present, present_override, absent, longest, fixed)


_plans: dict[int, Plan] = {}


def plan_for(policy: Policy) -> Plan:
    """The policy's plan, made on first use."""
    plan = _plans.get(id(policy))
    if plan is not None and plan.policy is policy:
        return plan
    if len(_plans) >= _CACHE_SIZE:
        _plans.clear()  # bounded: a reload storm costs re-planning, never memory
    plan = _plans[id(policy)] = make_plan(policy)
    return plan
