"""The per-policy plan (core/plan.py): the stages it leaves out change nothing, and its cache
returns one plan per policy object, bounded."""

from __future__ import annotations

import dataclasses

from hypothesis import given
from hypothesis import strategies as st

from autoscaler.core import initial_state
from autoscaler.core import plan as P
from autoscaler.core.clamp import bounds
from autoscaler.core.proposal import Proposal
from autoscaler.core.state import with_override
from autoscaler.core.types import DeploymentState, Observation
from autoscaler.policy.model import Policy

from . import test_core_objective as O
from .builders import T0, context, metric_readings, policies, policy


def _run(stages: tuple[P.Stage, ...], ctx: object, p: Proposal) -> Proposal:
    for stage in stages:
        p = stage(ctx, p)  # type: ignore[arg-type]
    return p


@st.composite
def cases(draw: st.DrawFn) -> tuple[Policy, Observation, bool, float]:
    objective = st.builds(O.slo, hpa=st.booleans(), min=st.sampled_from([0, 1, 2]))
    p = draw(st.one_of(policies(), objective))
    status = draw(st.sampled_from(["ready", "absent"]))
    replicas = 0 if status == "absent" else draw(st.integers(1, 12))
    readings = draw(metric_readings(tuple(m.name for m in p.metrics)))
    ready = draw(st.one_of(st.none(), st.integers(0, replicas)))
    obs = Observation(
        DeploymentState(status, replicas, ready),
        readings,
        startup_seconds=draw(st.sampled_from([None, 90.0])),
    )
    return p, obs, draw(st.booleans()), draw(st.floats(0, 14 * 86400, allow_nan=False))


@given(cases())
def test_the_plan_runs_what_every_stage_would(
    case: tuple[Policy, Observation, bool, float],
) -> None:
    p, obs, override, offset = case
    now = T0 + offset
    state = initial_state()
    if override:
        state = with_override(state, 3, now + 600)
    ctx = context(p, obs, state, now)
    plan = P.plan_for(p)
    start = Proposal(ctx.current)
    if obs.status == "absent":
        assert _run(plan.absent, ctx, start) == _run(P.ABSENT, ctx, start)
        return
    every = _run(P.PRESENT, ctx, start)
    assert _run(plan.present_override, ctx, start) == every
    if not override:
        assert _run(plan.present, ctx, start) == every
    if plan.fixed_bounds is not None:
        assert plan.fixed_bounds == (bounds(p, now), bounds(p, now, floor_one=False))


@given(policies())
def test_one_plan_per_policy_object(p: Policy) -> None:
    plan = P.plan_for(p)
    assert P.plan_for(p) is plan
    assert plan.policy is p
    other = dataclasses.replace(p, name=p.name + "-2")
    assert P.plan_for(other).policy is other


def test_the_cache_is_bounded() -> None:
    base = policy()
    for i in range(P._CACHE_SIZE * 3):
        p = dataclasses.replace(base, name=f"p{i}")
        assert P.plan_for(p).policy is p
        assert len(P._plans) <= P._CACHE_SIZE


def test_a_fleet_of_ten_thousand_policies_is_planned_once() -> None:
    """A daemon evaluates its policies in turn: a cache smaller than the fleet would be
    emptied before any plan was used twice, and every decision would plan again."""
    base = policy()
    fleet = [dataclasses.replace(base, name=f"fleet{i}") for i in range(10_000)]
    P._plans.clear()
    first = [P.plan_for(p) for p in fleet]
    assert [P.plan_for(p) for p in fleet] == first
    assert all(a is b for a, b in zip(first, (P.plan_for(p) for p in fleet), strict=True))
