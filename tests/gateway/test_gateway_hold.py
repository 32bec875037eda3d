"""The hold queue as a state machine: arrive, disconnect, timeout, ready (and back), requeue
after a start-up 404. Every request ends exactly once with the outcome its history calls for,
held requests leave in arrival order, and the bound on held requests holds."""

from __future__ import annotations

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from autoscaler.gateway.hold import (
    HOLD_TIMEOUT,
    QUEUE_FULL,
    SHUTTING_DOWN,
    Bounds,
    Forward,
    Held,
    HoldQueue,
    Refused,
)


def test_first_held_request_asks_for_activation_and_ready_releases_in_order() -> None:
    q = HoldQueue(Bounds(max_held=3, max_hold=10))
    first = q.arrive(1, now=0.0)
    assert first == Held(10.0, activate=True)
    assert q.arrive(2, now=1.0) == Held(11.0, activate=False)
    assert q.arrive(3, now=2.0, max_hold=2.0) == Held(4.0, activate=False)
    refused = q.arrive(4, now=3.0)
    assert isinstance(refused, Refused) and refused.reason == QUEUE_FULL
    assert refused.retry_after >= 1.0
    assert q.expire(4.0) == [3]
    assert q.mark_ready() == [1, 2]
    assert q.arrive(5, now=5.0) == Forward()


def test_header_never_lengthens_the_bound() -> None:
    q = HoldQueue(Bounds(max_held=1, max_hold=5))
    assert q.arrive(1, now=0.0, max_hold=60.0) == Held(5.0, activate=True)


def test_requeue_keeps_arrival_order_and_deadline() -> None:
    q = HoldQueue(Bounds(max_held=2, max_hold=10))
    q.arrive(1, 0.0)
    q.arrive(2, 0.0)
    assert q.mark_ready() == [1, 2]
    q.arrive(3, 1.0)  # ready, nothing held: forwarded
    assert q.requeue(2, 10.0, now=2.0) == Held(10.0, activate=True)
    assert q.requeue(1, 10.0, now=2.0) == Held(10.0, activate=False)
    assert isinstance(q.requeue(3, 1.5, now=2.0), Refused)
    assert q.mark_ready() == [1, 2]


def test_bounds_are_checked() -> None:
    with pytest.raises(ValueError, match="max_hold"):
        Bounds(max_held=1, max_hold=0)
    with pytest.raises(ValueError, match="max_held"):
        Bounds(max_held=-1, max_hold=1)


class HoldMachine(RuleBasedStateMachine):
    """The edge's bookkeeping, reduced to what the queue decides: outcomes per request."""

    def __init__(self) -> None:
        super().__init__()
        self.q = HoldQueue(Bounds(max_held=4, max_hold=10.0))
        self.now = 0.0
        self.next_rid = 1
        self.deadline: dict[int, float] = {}
        self.released: list[int] = []  # forwarded, not yet answered
        self.ended: dict[int, str] = {}
        self.release_log: list[list[int]] = []

    def end(self, rid: int, outcome: str) -> None:
        assert rid not in self.ended, f"request {rid} ended twice"
        self.ended[rid] = outcome

    @rule(max_hold=st.none() | st.floats(0.1, 30.0))
    def arrive(self, max_hold: float | None) -> None:
        rid, self.next_rid = self.next_rid, self.next_rid + 1
        held_before = self.q.held
        verdict = self.q.arrive(rid, self.now, max_hold)
        if isinstance(verdict, Forward):
            assert self.q.ready and held_before == 0
            self.released.append(rid)
            self.deadline[rid] = self.now + 10.0  # the edge gives every request the model's bound
        elif isinstance(verdict, Held):
            assert held_before < 4
            assert verdict.activate == (held_before == 0)
            bound = 10.0 if max_hold is None else min(10.0, max_hold)
            assert verdict.deadline == pytest.approx(self.now + bound)
            self.deadline[rid] = verdict.deadline
        else:
            assert verdict.reason == QUEUE_FULL and held_before >= 4
            self.end(rid, "refused_" + QUEUE_FULL)

    @rule(data=st.data())
    def disconnect(self, data: st.DataObject) -> None:
        candidates = sorted(set(range(1, self.next_rid)) - set(self.ended) - set(self.released))
        if not candidates:
            return
        rid = data.draw(st.sampled_from(candidates))
        assert self.q.leave(rid)
        self.end(rid, "cancelled")
        assert not self.q.leave(rid)  # a second disconnect changes nothing

    @rule(seconds=st.floats(0.0, 12.0))
    def time_passes(self, seconds: float) -> None:
        self.now += seconds
        for rid in self.q.expire(self.now):
            assert self.deadline[rid] <= self.now
            self.end(rid, "refused_" + HOLD_TIMEOUT)

    @rule()
    def ready(self) -> None:
        released = self.q.mark_ready()
        assert released == sorted(released)
        self.release_log.append(released)
        self.released.extend(released)

    @rule()
    def not_ready(self) -> None:
        self.q.mark_not_ready()

    @precondition(lambda self: self.released)
    @rule(data=st.data(), start_up_404=st.booleans())
    def upstream_answers(self, data: st.DataObject, start_up_404: bool) -> None:
        rid = data.draw(st.sampled_from(self.released))
        self.released.remove(rid)
        if not start_up_404:
            self.end(rid, "answered")
            return
        verdict = self.q.requeue(rid, self.deadline[rid], self.now)
        if isinstance(verdict, Refused):
            assert self.deadline[rid] <= self.now
            self.end(rid, "refused_" + HOLD_TIMEOUT)

    @invariant()
    def accounted(self) -> None:
        held = [r for r in range(1, self.next_rid) if self.q.holds(r)]
        assert len(held) == self.q.held
        everyone = set(held) | set(self.released) | set(self.ended)
        assert everyone == set(range(1, self.next_rid)), "a request was dropped silently"
        assert not (set(held) & set(self.ended)) and not (set(self.released) & set(self.ended))
        assert not (self.q.ready and held), "ready with requests still held"

    def teardown(self) -> None:
        for rid in self.q.drain():
            self.end(rid, "refused_" + SHUTTING_DOWN)
        for rid in self.released:
            self.end(rid, "answered")
        assert set(self.ended) == set(range(1, self.next_rid))


TestHoldMachine = HoldMachine.TestCase
TestHoldMachine.settings = settings(max_examples=300, stateful_step_count=40, deadline=None)
