"""Scale to zero and back, through `decide` (KEDA semantics: activation threshold separate
from the target, cooldown to zero counted from the last active time, schedule and admin
blocks, creating from absent)."""

from __future__ import annotations

import pytest

from autoscaler.core import CoreState, Decision, decide, initial_state, with_override, with_paused
from autoscaler.core import reasons as R
from autoscaler.core.proposal import Recommendation
from autoscaler.core.types import Observation
from autoscaler.core.zero import create_stage, idle_stage, wake_stage
from autoscaler.policy.model import Activation, Cost, Policy, ScaleToZero, Schedule

from .builders import T0, absent, context, metric, policy, proposal, ready

STZ = ScaleToZero(after=300.0, activation=(Activation("waiting", 2.0),))


def zero_policy(**kw: object) -> Policy:
    kw.setdefault("scale_to_zero", STZ)
    kw.setdefault("min", 0)
    return policy(**kw)  # type: ignore[arg-type]


def run(
    p: Policy,
    observations: list[Observation],
    start: float = T0,
    step: float = 15.0,
    state: CoreState | None = None,
) -> list[Decision]:
    s = state or initial_state()
    out = []
    for i, obs in enumerate(observations):
        d, s = decide(p, s, obs, start + i * step)
        out.append(d)
    return out


@pytest.mark.parametrize(
    ("waiting", "action", "replicas"),
    [
        (0.0, "none", 0),
        (2.0, "none", 0),  # at the activation threshold: still idle (<=)
        (2.5, "create", 1),  # above activation, below one replica's target: 1
        (37.0, "create", 8),  # the target decides N: ceil(37 / 5)
    ],
)
def test_activation_vs_target(waiting: float, action: str, replicas: int) -> None:
    [d] = run(zero_policy(max=10), [absent(waiting=waiting)])
    assert (d.action, d.replicas) == (action, replicas)
    assert d.reasons == ((R.ACTIVATE_FROM_ZERO,) if action == "create" else (R.AT_ZERO,))


def test_create_count_clamped_to_max_and_cost_cap() -> None:
    [d] = run(zero_policy(max=10, cost=Cost(2.5, 15.0)), [absent(waiting=500.0)])
    assert (d.action, d.replicas) == ("create", 6)
    assert R.COST_CAP in d.reasons


def test_create_with_the_active_schedule_min() -> None:
    window = Schedule("* * * * *", 120.0, "UTC", min=3)  # always active
    [d] = run(zero_policy(schedules=(window,)), [absent(waiting=3.0)])
    assert (d.action, d.replicas) == ("create", 3)
    assert d.reasons == (R.ACTIVATE_FROM_ZERO, R.SCHEDULE_MIN)


def test_absent_with_schedule_min_creates_without_load() -> None:
    window = Schedule("* * * * *", 120.0, "UTC", min=2)
    [d] = run(zero_policy(schedules=(window,)), [absent(waiting=0.0)])
    assert (d.action, d.replicas, d.reasons) == ("create", 2, (R.SCHEDULE_MIN,))


def test_absent_below_min_is_created() -> None:
    [d] = run(policy(min=2), [absent(waiting=0.0)])
    assert (d.action, d.replicas, d.reasons) == ("create", 2, (R.BELOW_MIN,))


def test_absent_without_create_spec_cannot_create() -> None:
    [d] = run(zero_policy(create=None), [absent(waiting=9.0)])
    assert (d.action, d.replicas) == ("none", 0)
    assert d.reasons == (R.ACTIVATE_FROM_ZERO, R.NO_CREATE_SPEC)


def test_failed_metric_cannot_activate() -> None:
    [d] = run(zero_policy(), [absent(waiting=None)])
    assert (d.action, d.reasons) == ("none", (R.AT_ZERO,))


def test_delete_after_idle_for_the_whole_period() -> None:
    idle = [ready(1, waiting=1.0)] * 22  # 15 s apart: idle from the first, 300 s at the 21st
    ds = run(zero_policy(), idle)
    assert all(d.action == "none" for d in ds[:20])
    assert R.IDLE_PENDING in ds[0].reasons
    assert "idle 0s of 5m" in ds[0].message
    assert (ds[20].action, ds[20].replicas, ds[20].reasons) == ("delete", 0, (R.IDLE_TO_ZERO,))


@pytest.mark.parametrize("reset", [ready(1, waiting=5.0), ready(1, waiting=None)])
def test_active_or_failed_reading_restarts_the_idle_clock(reset: Observation) -> None:
    obs = [ready(1, waiting=0.0)] * 19 + [reset] + [ready(1, waiting=0.0)] * 21
    ds = run(zero_policy(), obs)
    deletes = [i for i, d in enumerate(ds) if d.action == "delete"]
    assert deletes and deletes[0] == 20 + 20  # idle again from #20, 300 s later is #40


def test_other_metrics_do_not_keep_it_alive_but_their_failure_does() -> None:
    p = zero_policy(metrics=(metric("waiting"), metric("kv", "utilization", 0.8)))
    ds = run(p, [ready(1, waiting=0.0, kv=0.9)] * 21)  # kv busy but not an activation metric
    assert ds[20].action == "delete"
    ds = run(p, [ready(1, waiting=0.0, kv=None)] * 30)
    assert all(d.action != "delete" for d in ds)


def test_no_delete_while_a_schedule_requires_replicas() -> None:
    window = Schedule("* * * * *", 120.0, "UTC", min=1)
    ds = run(zero_policy(schedules=(window,)), [ready(1, waiting=0.0)] * 30)
    assert all(d.action == "none" for d in ds)
    assert "schedule window requires 1" in ds[-1].message


def test_no_delete_during_override() -> None:
    s = with_override(initial_state(), 2, T0 + 10_000)
    ds = run(zero_policy(), [ready(2, waiting=0.0)] * 30, state=s)
    assert all(d.action != "delete" for d in ds)
    assert all(R.OVERRIDE in d.reasons for d in ds)


def test_without_scale_to_zero_idle_never_deletes() -> None:
    ds = run(policy(min=1), [ready(1, waiting=0.0)] * 40)
    assert all(d.action == "none" for d in ds)


# idle stage table, idle 400 s > after 300 s: what blocks the delete -> (action, reasons)
@pytest.mark.parametrize(
    ("override", "create", "waiting", "action", "reasons"),
    [
        (False, True, 0.0, "delete", (R.IDLE_TO_ZERO,)),
        (True, True, 0.0, None, (R.IDLE_PENDING,)),  # an override is active
        (False, False, 0.0, None, (R.IDLE_PENDING,)),  # nothing to come back with
        (False, True, 9.0, None, ()),  # active again: the idle clock resets
    ],
)
def test_idle_stage(
    override: bool, create: bool, waiting: float, action: str | None, reasons: tuple[str, ...]
) -> None:
    p = zero_policy(create={"m": 1} if create else None)
    state = CoreState(override=(2, T0 + 60.0) if override else None)
    ctx = context(p, ready(1, waiting=waiting), state)
    out = idle_stage(ctx, proposal(1, 1, idle_since=T0 - 400.0))
    assert (out.action, out.reasons, out.settled) == (action, reasons, action is not None)
    assert out.idle_since == (None if waiting > 2.0 else T0 - 400.0)


# wake + create stages table, absent: (waiting, min, create spec) -> (action, count, reasons)
@pytest.mark.parametrize(
    ("waiting", "min_", "create", "action", "count", "reasons"),
    [
        (0.0, 0, True, "none", 0, (R.AT_ZERO,)),
        (12.0, 0, True, "create", 3, (R.ACTIVATE_FROM_ZERO,)),
        (0.0, 2, True, "create", 2, (R.BELOW_MIN,)),
        (12.0, 0, False, "none", 0, (R.ACTIVATE_FROM_ZERO, R.NO_CREATE_SPEC)),
    ],
)
def test_wake_and_create_stages(
    waiting: float,
    min_: int,
    create: bool,
    action: str,
    count: int,
    reasons: tuple[str, ...],
) -> None:
    p = zero_policy(min=min_, create={"m": 1} if create else None)
    ctx = context(p, absent(waiting=waiting))
    rec = Recommendation(3 if waiting else 0, R.SCALE_UP, "->")
    out = create_stage(ctx, wake_stage(ctx, proposal(0, recommendation=rec)))
    assert (out.action, out.replicas, out.reasons) == (action, count, reasons)


def test_idle_time_while_scale_to_zero_was_off_does_not_count() -> None:
    """The idle clock of a policy whose scale to zero was switched off (min raised to 1) and
    on again (min back to 0) starts at the switch: the busy hours in between were never
    tracked, so an idle clock from before them must not delete at the first idle reading."""
    zero, kept = zero_policy(), zero_policy(min=1)  # kept: the same settings, unused at min 1
    s = initial_state()
    _, s = decide(zero, s, ready(1, waiting=0.0), T0)  # idle from T0
    for i in range(1, 40):  # an hour at min 1, busy, as far as anyone could see
        _, s = decide(kept, s, ready(3, waiting=50.0 if i < 39 else 0.0), T0 + i * 100)
    d, _ = decide(zero, s, ready(3, waiting=0.0), T0 + 4000)
    assert d.action != "delete", d


def test_idle_time_while_paused_does_not_count() -> None:
    """A pause hides the load: after the resume the deployment must be seen idle for the whole
    `scale_to_zero.after` again before it is deleted."""
    p = zero_policy()
    s = initial_state()
    _, s = decide(p, s, ready(1, waiting=0.0), T0)  # idle from T0
    s = with_paused(with_paused(s, True), False, T0 + 3600)  # paused for an hour, resumed
    d, _ = decide(p, s, ready(1, waiting=0.0), T0 + 3600)
    assert d.action != "delete", d


@pytest.mark.parametrize(
    ("gap", "deleted"),
    [
        (45.0, True),  # three 15 s evaluations missed (a busy daemon): still watched
        (61.0, False),  # past max(3 intervals, 60 s): nobody saw the load in between
        (3 * 86400.0, False),  # a daemon stopped for three days
    ],
)
def test_idle_time_across_a_gap_in_the_evaluations_does_not_count(
    gap: float, deleted: bool
) -> None:
    """A state idle since T0, then no evaluation for `gap` seconds: the first idle reading after
    a long gap restarts the idle clock (the deployment may have been busy the whole time), and
    it must be seen idle for the whole `scale_to_zero.after` again before a delete."""
    p = zero_policy()  # interval 15 s, after 5 m
    s = initial_state()
    for i in range(20):  # idle 4m45s: one evaluation short of a delete
        d, s = decide(p, s, ready(1, waiting=0.0), T0 + i * 15.0)
        assert d.action == "none", d
    late = T0 + 19 * 15.0 + gap
    d, s = decide(p, s, ready(1, waiting=0.0), late)
    assert (d.action == "delete") is deleted, d
    if not deleted:
        assert s.idle_since == late
        after = run(p, [ready(1, waiting=0.0)] * 22, start=late + 15.0, state=s)
        assert [d.action for d in after].count("delete") >= 1  # once watched for `after`


def test_a_state_saved_without_its_last_evaluation_time_restarts_the_idle_clock() -> None:
    """A state from before `seen_at` existed says nothing of when it was last watched."""
    p = zero_policy()
    s = CoreState.from_dict({"version": 1, "idle_since": T0 - 86400.0})
    d, s = decide(p, s, ready(1, waiting=0.0), T0)
    assert d.action == "none" and s.idle_since == T0 and s.seen_at == T0
