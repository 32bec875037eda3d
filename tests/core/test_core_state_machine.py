"""Long observation sequences through `decide`, checking every invariant at every step.

A Hypothesis `RuleBasedStateMachine` plays load changes, metric failures and recoveries,
provider status changes (failure, recovery, an outside delete), admin pause, and time moving
in interval steps or jumping hours to days (in and out of schedule windows). `World` applies
each decision as the provider would and `Checker` asserts invariants 1 to 6, a
bounded JSON-round-tripping state and documented reason codes after every decision.
"""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from autoscaler.core import with_paused
from autoscaler.policy.model import Policy

from .builders import T0, policies
from .harness import World

LOADS = st.sampled_from((0.0, 0.2, 1.0, 3.0, 8.0, 25.0, 60.0, 200.0, 1000.0))


class CoreMachine(RuleBasedStateMachine):
    world: World
    policy: Policy
    readings: dict[str, float | None]
    now: float

    @initialize(p=policies(), offset=st.integers(0, 7 * 86400), load=LOADS)
    def start(self, p: Policy, offset: int, load: float) -> None:
        self.policy = p
        self.world = World(p, replicas=max(1, p.replicas.min))
        self.readings = {m.name: load for m in p.metrics}
        self.now = T0 + offset
        self.decisions = 0

    def _evaluate(self, gap: float) -> None:
        self.now += gap
        self.world.step(self.readings, self.now)
        self.decisions += 1

    @rule(load=LOADS, which=st.integers(0, 2))
    def change_load(self, load: float, which: int) -> None:
        name = self.policy.metrics[which % len(self.policy.metrics)].name
        self.readings[name] = load

    @rule(which=st.integers(0, 2))
    def metric_fails(self, which: int) -> None:
        name = self.policy.metrics[which % len(self.policy.metrics)].name
        self.readings[name] = None

    @rule(which=st.integers(0, 2), drop=st.booleans())
    def metric_missing(self, which: int, drop: bool) -> None:
        name = self.policy.metrics[which % len(self.policy.metrics)].name
        if drop:
            self.readings.pop(name, None)

    @rule(load=LOADS)
    def metrics_recover(self, load: float) -> None:
        self.readings = {m.name: load for m in self.policy.metrics}

    @rule(gap=st.sampled_from((15.0, 15.0, 15.0, 1.0, 30.0)))
    def tick(self, gap: float) -> None:
        self._evaluate(gap)

    @rule(steps=st.integers(2, 25))
    def run_for_a_while(self, steps: int) -> None:
        for _ in range(steps):
            self._evaluate(15.0)

    @rule(gap=st.sampled_from((600.0, 3600.0, 5 * 3600.0, 86400.0, 3 * 86400.0)))
    def time_jumps(self, gap: float) -> None:
        self._evaluate(gap)

    @rule(status=st.sampled_from(("failed", "ready", "absent", "initializing", "terminating")))
    def provider_changes_status(self, status: str) -> None:
        self.world.force_status(status)

    @rule(paused=st.booleans())
    def admin_pause(self, paused: bool) -> None:
        self.world.state = with_paused(self.world.state, paused)

    @precondition(lambda self: self.world.status == "failed")
    @rule()
    def failed_deployment_recovers(self) -> None:
        self.world.force_status("ready")

    @invariant()
    def state_bounded(self) -> None:
        s = self.world.state
        assert len(s.down_history) + len(s.up_history) + len(s.events) <= 200
        assert s.recreates <= self.decisions + 1


# 40 runs of up to 60 rules under the `ci` profile; `thorough` scales it up 20x.
CoreMachine.TestCase.settings = settings(
    settings.default,
    max_examples=max(10, settings.default.max_examples * 2 // 5),
    stateful_step_count=60,
    deadline=None,
)
TestCoreStateMachine = CoreMachine.TestCase
