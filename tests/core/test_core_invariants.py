"""One Hypothesis property per product invariant (product.md, "Invariants").

Invariant 7 (no spec lost, no duplicate deployment across a crash) is the runtime's: the
core does no I/O, so it is tested with the runtime and store, not here.
"""

from __future__ import annotations

from itertools import pairwise

from hypothesis import assume, given
from hypothesis import strategies as st

from autoscaler.core import CoreState, decide, initial_state, to_dict
from autoscaler.core.types import DeploymentState, Observation
from autoscaler.policy.model import Policy

from .builders import T0, healthy_readings, metric_readings, policies
from .harness import World, failed_names, independent_bounds

STEP = 15.0


@st.composite
def scenario(
    draw: st.DrawFn,
    schedules: bool = True,
    healthy: bool = False,
    max_steps: int = 40,
    min_steps: int = 1,
) -> tuple[Policy, list[tuple[float, dict[str, float | None]]]]:
    """A policy and a sequence of (time gap, readings), gaps mostly one interval."""
    p = draw(policies(schedules=schedules))
    names = tuple(m.name for m in p.metrics)
    # half the runs without failed reads, so scale-downs (and their rules) happen often
    healthy = healthy or draw(st.booleans(), label="healthy")
    readings = healthy_readings(names) if healthy else metric_readings(names)
    gaps = st.sampled_from((STEP, STEP, STEP, STEP, 1.0, 60.0, 3600.0))
    steps = draw(st.lists(st.tuples(gaps, readings), min_size=min_steps, max_size=max_steps))
    return p, steps


def drive(
    p: Policy,
    steps: list[tuple[float, dict[str, float | None]]],
    start: float = T0,
    replicas: int = 2,
) -> World:
    world = World(p, replicas=replicas)
    now = start
    for gap, readings in steps:
        now += gap
        world.step(readings, now)  # the harness checks every invariant at every step
    return world


@given(scenario(), st.integers(0, 14 * 86400))
def test_invariant_1_within_bounds_or_zero_only_after_idle_period(
    case: tuple[Policy, list[tuple[float, dict[str, float | None]]]], offset: int
) -> None:
    p, steps = case
    world = drive(p, steps, start=T0 + offset, replicas=max(1, p.replicas.min))
    assert world.checker is not None and world.checker.steps == len(steps)


@given(
    policies(schedules=False),
    st.data(),
)
def test_invariant_2_inside_tolerance_band_nothing_changes(p: Policy, data: st.DataObject) -> None:
    lower, upper = independent_bounds(p, T0)
    current = data.draw(st.integers(lower, upper), label="current")
    tol = p.behavior.tolerance
    readings: dict[str, float | None] = {}
    for m in p.metrics:
        ratio = data.draw(st.floats(1 - tol.down, 1 + tol.up), label=f"ratio {m.name}")
        if m.target.type == "average_value":
            readings[m.name] = ratio * m.target.value * current
        else:
            readings[m.name] = ratio * m.target.value
    d, _ = decide(p, initial_state(), Observation(DeploymentState("ready", current), readings), T0)
    assert (d.action, d.replicas) == ("none", current), d


@given(scenario(schedules=False, healthy=True, max_steps=1), st.integers(1, 12))
def test_invariant_2_constant_load_converges_without_oscillating(
    case: tuple[Policy, list[tuple[float, dict[str, float | None]]]], start_replicas: int
) -> None:
    p, [(_, readings)] = case
    world = World(p, replicas=min(max(start_replicas, 1), 12))
    counts = []
    deleted_at = None
    now = T0
    for i in range(150):
        now += STEP
        if world.step(readings, now).action == "delete":
            assert deleted_at is None, "deleted twice under a constant load"
            deleted_at = i
        counts.append(world.replicas if world.status != "absent" else 0)
    # Going to zero is the activation metrics' call (0 <-> 1), independent of where the
    # targets had taken the count (1 <-> N): once deleted it must stay at zero, and the
    # counts before must not have turned around.
    scaling = counts if deleted_at is None else counts[: deleted_at + 1]
    if deleted_at is not None:
        assert set(counts[deleted_at + 3 :]) <= {0}, counts
    moves = [b - a for a, b in pairwise(scaling) if b != a]
    assert all(m > 0 for m in moves) or all(m < 0 for m in moves), counts
    assert len(set(counts[-30:])) == 1, counts  # converged


@given(scenario(max_steps=25), st.data())
def test_invariant_3_more_load_never_fewer_replicas(
    case: tuple[Policy, list[tuple[float, dict[str, float | None]]]], data: st.DataObject
) -> None:
    p, steps = case
    world = drive(p, steps[:-1])
    now = T0 + sum(g for g, _ in steps)
    _, readings = steps[-1]
    names = [m.name for m in p.metrics if readings.get(m.name) is not None]
    assume(names)
    bumped_name = data.draw(st.sampled_from(names), label="metric")
    extra = data.draw(st.floats(0.001, 1000.0), label="extra")
    status = data.draw(st.sampled_from(("ready", "absent")), label="status")
    replicas = 0 if status == "absent" else max(1, world.replicas)
    more = dict(readings)
    more[bumped_name] = (readings[bumped_name] or 0.0) + extra
    base, _ = decide(p, world.state, Observation(DeploymentState(status, replicas), readings), now)  # type: ignore[arg-type]
    high, _ = decide(p, world.state, Observation(DeploymentState(status, replicas), more), now)  # type: ignore[arg-type]
    assert high.replicas >= base.replicas, (base, high)


@given(scenario(min_steps=10))
def test_invariant_4_no_scale_down_inside_window_or_cooldown_no_step_beyond_rate(
    case: tuple[Policy, list[tuple[float, dict[str, float | None]]]],
) -> None:
    p, steps = case
    drive(p, steps)  # Checker._check_scale_down / _check_scale_up assert the rules


@given(scenario(max_steps=25), st.data())
def test_invariant_5_failed_metrics_never_scale_down(
    case: tuple[Policy, list[tuple[float, dict[str, float | None]]]], data: st.DataObject
) -> None:
    p, steps = case
    world = drive(p, steps)
    now = T0 + sum(g for g, _ in steps) + STEP
    readings = dict(steps[-1][1])
    broken = data.draw(st.sampled_from([m.name for m in p.metrics]), label="failed")
    readings[broken] = None
    assert failed_names(p, readings)
    current = data.draw(st.integers(1, p.replicas.max), label="current")
    d, _ = decide(p, world.state, Observation(DeploymentState("ready", current), readings), now)
    _, upper = independent_bounds(p, now)
    assert d.action != "delete"
    if current <= upper:  # above the bounds the bounds win, not the metrics
        assert d.replicas >= current, d


@given(scenario(), policies(), st.integers(0, 40))
def test_invariant_6_same_inputs_same_output(
    case: tuple[Policy, list[tuple[float, dict[str, float | None]]]], other: Policy, cut: int
) -> None:
    """No clock, no global state: two runs agree, also with another policy's calls (and the
    schedule memo) interleaved, and resuming from the serialized state half-way."""
    p, steps = case

    def run(interleave: bool, resume_at: int | None) -> list[object]:
        s: CoreState = initial_state()
        out: list[object] = []
        now = T0
        for i, (gap, readings) in enumerate(steps):
            now += gap
            if interleave:
                decide(
                    other,
                    initial_state(),
                    Observation(DeploymentState("ready", 3), {}),
                    now + 7 * 86400 * i,
                )
            if resume_at == i:
                s = CoreState.from_dict(to_dict(s))
            d, s = decide(p, s, Observation(DeploymentState("ready", 2), readings), now)
            out.append((d, to_dict(s)))
        return out

    first = run(False, None)
    assert run(True, None) == first
    assert run(False, cut % len(steps)) == first


# Invariant 7 (no spec lost, no duplicate deployment across a crash) needs a process to
# crash: tests/runtime/test_runtime_crash_kill.py and test_runtime_ha_kill.py test it.
