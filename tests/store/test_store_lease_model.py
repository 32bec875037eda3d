"""A Hypothesis state machine over the lease and fencing rules: random acquires, releases,
clock jumps and fenced writes against the SQLite store (with a fake clock), compared step by
step with a small reference model of the rules. PostgreSQL runs the same rules in SQL; the
contract suite checks that one over the real server."""

from __future__ import annotations

from typing import Any

import anyio
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from autoscaler.store import FencedError
from autoscaler.store.sqlite import SQLiteStore

CLUSTERS = st.sampled_from(["c1", "c2"])
HOLDERS = st.sampled_from(["a", "b", "c"])


class LeaseMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now = 1000.0
        self.store = SQLiteStore(":memory:", cluster="c1", clock=lambda: self.now)
        anyio.run(self.store.open)
        # Reference model: cluster -> (holder, epoch, expires_at)
        self.leases: dict[str, tuple[str, int, float]] = {}
        self.written: dict[str, Any] | None = None
        self.writes = 0

    def teardown(self) -> None:
        anyio.run(self.store.close)

    @rule(cluster=CLUSTERS, holder=HOLDERS, ttl=st.sampled_from([1.0, 5.0, 10.0]))
    def acquire(self, cluster: str, holder: str, ttl: float) -> None:
        got = anyio.run(self.store.acquire_lease, cluster, holder, ttl)
        current = self.leases.get(cluster)
        if current is None:
            expected: tuple[str, int, float] | None = (holder, 1, self.now + ttl)
        elif current[2] > self.now:
            same = current[0] == holder
            expected = (holder, current[1], self.now + ttl) if same else None
        else:
            expected = (holder, current[1] + 1, self.now + ttl)
        if expected is None:
            assert got is None
            return
        assert got is not None
        assert (got.holder, got.epoch, got.expires_at) == expected
        self.leases[cluster] = expected

    @rule(cluster=CLUSTERS, holder=HOLDERS)
    def release(self, cluster: str, holder: str) -> None:
        anyio.run(self.store.release_lease, cluster, holder)
        current = self.leases.get(cluster)
        if current is not None and current[0] == holder:
            self.leases[cluster] = (holder, current[1], min(current[2], self.now))

    @rule(seconds=st.floats(min_value=0, max_value=12))
    def advance(self, seconds: float) -> None:
        self.now += seconds

    @rule(epoch=st.integers(min_value=0, max_value=6))
    def fenced_write(self, epoch: int) -> None:
        self.writes += 1
        value = {"write": self.writes}
        current = self.leases.get("c1")
        allowed = current is not None and current[1] == epoch and current[2] > self.now
        try:
            anyio.run(lambda: self.store.save_state("p", value, epoch=epoch))
        except FencedError:
            assert not allowed
        else:
            assert allowed
            self.written = value

    @invariant()
    def stored_state_is_the_last_allowed_write(self) -> None:
        assert anyio.run(self.store.load_state, "p") == self.written


# Inherits the loaded profile (max_examples etc.); only the sequence length is ours.
LeaseMachine.TestCase.settings = settings(stateful_step_count=20)
test_lease_rules_match_the_model = LeaseMachine.TestCase
