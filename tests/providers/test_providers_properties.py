"""Property tests: (1) under any sequence of injected faults, a create ends in success or a
typed error and never leaves two deployments with one name; (2) the simulator's lifecycle
state machine keeps its invariants (unique live names, endpoint only when ready, uptime only
when ready, billing never decreasing) under any sequence of operations and clock moves."""

from __future__ import annotations

import httpx
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from autoscaler.fakecloud import Faults, VirtualClock
from autoscaler.fakecloud.state import DuplicateName, InvalidState, SimState
from autoscaler.providers.base import ProviderError
from tests.providers.helpers import PROVIDERS, SPECS, client, in_process, run

CREATE_PATHS = {
    "neevcloud": "/aimodels",
    "netmind": "/v1/inference-service",
    "nebius": "/v0/dedicated_endpoints",
}
fault = st.fixed_dictionaries(
    {
        "kind": st.sampled_from(["error", "error_after", "rate_limit", "drop", "drop_after"]),
        "method": st.sampled_from(["GET", "POST", None]),
        "times": st.integers(min_value=1, max_value=3),
        "status": st.sampled_from([500, 502, 503, 400, 404]),
    }
)


@settings(max_examples=60)
@given(kind=st.sampled_from(PROVIDERS), faults=st.lists(fault, max_size=5))
def test_create_under_any_faults_never_duplicates(kind: str, faults: list[dict]) -> None:
    app, sim, clock = in_process(kind, provision_seconds=0)
    for f in faults:
        sim.script(f["kind"], method=f["method"], times=f["times"], status=f["status"])

    async def scenario() -> str:
        p = client(kind, "http://sim", clock, transport=httpx.ASGITransport(app=app))
        try:
            info = await p.create("chat-llama", SPECS[kind], 1)
        except ProviderError as exc:
            return type(exc).__name__
        assert info.name == "chat-llama"
        return "ok"

    outcome = run(scenario())
    assert sim.names_held_twice() == []
    assert sim.name_collisions == 0
    live = [d.name for d in sim.current()]
    assert live.count("chat-llama") <= 1
    if outcome == "ok":
        assert live == ["chat-llama"]
    posts = [r for r in sim.requests if r["method"] == "POST"]
    assert all(r["path"].endswith(CREATE_PATHS[kind]) for r in posts)


class SimLifecycle(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = VirtualClock()
        self.sim = SimState(
            "neevcloud",
            token="t",
            clock=self.clock,
            faults=Faults(),
            provision_seconds=30,
            scale_seconds=10,
            terminate_seconds=20,
            id_prefix="dep-",
        )
        self.billed: dict[str, float] = {}

    @rule(name=st.sampled_from(["a-one", "b-two", "c-three"]), replicas=st.integers(1, 4))
    def create(self, name: str, replicas: int) -> None:
        live = {d.name for d in self.sim.current()}
        try:
            self.sim.create(name, {"region": "r"}, replicas)
        except DuplicateName:
            assert name in live
        else:
            assert name not in live

    @precondition(lambda self: bool(self.sim.current()))
    @rule(pick=st.integers(0, 10), replicas=st.integers(1, 6))
    def scale(self, pick: int, replicas: int) -> None:
        live = self.sim.current()
        dep = live[pick % len(live)]
        try:
            self.sim.scale(dep.id, replicas)
        except InvalidState:
            assert dep.status in ("terminating", "failed")
        else:
            assert dep.replicas == replicas

    @precondition(lambda self: bool(self.sim.current()))
    @rule(pick=st.integers(0, 10))
    def delete(self, pick: int) -> None:
        live = self.sim.current()
        self.sim.delete(live[pick % len(live)].id)

    @precondition(lambda self: bool(self.sim.current()))
    @rule(pick=st.integers(0, 10))
    def fail(self, pick: int) -> None:
        live = self.sim.current()
        assert self.sim.fail(live[pick % len(live)].id).status == "failed"

    @rule(seconds=st.floats(min_value=0, max_value=60))
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @invariant()
    def names_are_unique_among_live_deployments(self) -> None:
        assert self.sim.names_held_twice() == []

    @invariant()
    def uptime_only_while_ready(self) -> None:
        for dep in self.sim.current():
            if dep.status != "ready":
                assert self.sim.uptime(dep) == 0
            assert dep.status in ("initializing", "ready", "failed", "terminating")

    @invariant()
    def billing_never_decreases(self) -> None:
        now = self.sim.replica_seconds()
        for dep_id, seconds in now.items():
            assert seconds >= self.billed.get(dep_id, 0.0) - 1e-9
        self.billed = now


TestSimLifecycle = SimLifecycle.TestCase
TestSimLifecycle.settings = settings(max_examples=50, stateful_step_count=30)
