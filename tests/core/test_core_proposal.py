"""Proposal: its rebuilding methods copy every field (a field left out of `_draft` would be
lost, or unset, on the next stage), and `_replace` behaves as a NamedTuple's did."""

from __future__ import annotations

import dataclasses

import pytest

from autoscaler.core.proposal import Proposal, Recommendation, first

# A distinct value for every field, none of them the default.
EVERY = {f.name: ("value", f.name) for f in dataclasses.fields(Proposal)}


def test_the_draft_copies_every_field() -> None:
    p = Proposal(**EVERY)  # type: ignore[arg-type]
    assert p._replace() == p
    assert dataclasses.asdict(p._replace()) == EVERY
    moved = p.moved(7, ("r",), ("m",))
    assert dataclasses.asdict(moved) == {**EVERY, "replicas": 7, "reasons": ("r",), "parts": ("m",)}


def test_first_is_the_constructor_with_the_states_fields() -> None:
    history = ((1.0, 2),)
    assert first(3, history, (), None, 6.0, None, 8.0) == Proposal(
        3, up_history=history, idle_since=6.0, resumed_at=8.0
    )


def test_noted_moved_recommended_change_only_their_fields() -> None:
    p = first(3, ((1.0, 2),), ((1.0, 4),), 5.0, 6.0, 7.0, 8.0)
    assert p == Proposal(
        3,
        (),
        (),
        ((1.0, 2),),
        ((1.0, 4),),
        panic_until=5.0,
        idle_since=6.0,
        last_active=7.0,
        resumed_at=8.0,
    )
    n = p.noted("a", "b")
    assert (n.replicas, n.reasons, n.parts) == (3, ("a",), ("b",))
    assert n.noted("c", "d", 9)._replace(reasons=(), parts=(), replicas=3) == p
    rec = Recommendation(5, "metrics_missing_no_scale_down", "x", ("m",))
    r = p.recommended(rec, ("objective_sized",))
    assert (r.replicas, r.desired, r.recommendation, r.failed) == (5, 5, rec, ("m",))
    assert (r.remember, r.objective_reasons, r.memory) == (False, ("objective_sized",), None)
    assert r.up_history == p.up_history and r.resumed_at == 8.0


def test_replace_rejects_unknown_fields_and_stays_frozen() -> None:
    p = Proposal(1)
    with pytest.raises(ValueError, match="unexpected field names"):
        p._replace(nope=1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.replicas = 2  # type: ignore[misc]
    assert type(p._replace(replicas=2)) is Proposal
