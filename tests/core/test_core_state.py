"""CoreState: JSON round-trip (property), garbage rejected with ValueError naming the key,
bounded size over long runs, and the runtime helpers."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autoscaler.core import CoreState, decide, from_dict, initial_state, to_dict
from autoscaler.core.state import advance, evolve
from autoscaler.core.types import DeploymentState, Observation

from .builders import T0, metric_readings, policies

times = st.floats(-1e10, 1e10, allow_nan=False, allow_infinity=False)
entries = st.lists(st.tuples(times, st.integers(0, 10**6)), max_size=8).map(tuple)
signed_entries = st.lists(st.tuples(times, st.integers(-1000, 1000)), max_size=8).map(tuple)
actions = st.none() | st.tuples(
    times, st.sampled_from(("scale_up", "scale_down", "create", "delete"))
)

states = st.builds(
    CoreState,
    up_history=entries,
    down_history=entries,
    events=signed_entries,
    last_action=actions,
    prev_action=actions,
    idle_since=st.none() | times,
    last_active=st.none() | times,
    metric_failures=st.integers(0, 10**6),
    panic_until=st.none() | times,
    failed_since=st.none() | times,
    recreates=st.integers(0, 100),
    paused=st.booleans(),
    override=st.none() | st.tuples(st.integers(1, 1000), times),
)


@given(states)
def test_round_trip_through_json(state: CoreState) -> None:
    text = json.dumps(to_dict(state))
    back = from_dict(json.loads(text))
    assert back == state
    assert to_dict(back) == to_dict(state)
    assert CoreState.from_dict(state.to_dict()) == state


@given(policies(), st.lists(metric_readings(("waiting", "kv", "backlog")), max_size=30))
def test_states_reached_by_decide_round_trip(policy: Any, readings: list[Any]) -> None:
    s = initial_state()
    replicas = 2
    for i, r in enumerate(readings):
        d, s = decide(policy, s, Observation(DeploymentState("ready", replicas), r), T0 + 15 * i)
        replicas = max(1, d.replicas)
        assert from_dict(json.loads(json.dumps(to_dict(s)))) == s


@pytest.mark.parametrize(
    ("data", "names"),
    [
        ([], "state"),
        ({"bogus": 1}, "unknown keys"),
        ({"version": 2}, "state.version"),
        ({"up_history": "x"}, "state.up_history"),
        ({"up_history": [[1.0]]}, r"state.up_history\[0\]"),
        ({"down_history": [[1.0, -1]]}, r"state.down_history\[0\]"),
        ({"down_history": [["t", 1]]}, r"state.down_history\[0\]"),
        ({"events": [[1.0, 1.5]]}, r"state.events\[0\]"),
        ({"events": [[float("nan"), 1]]}, r"state.events\[0\]"),
        ({"last_action": [1.0, "explode"]}, "state.last_action"),
        ({"idle_since": "yesterday"}, "state.idle_since"),
        ({"panic_until": float("inf")}, "state.panic_until"),
        ({"metric_failures": -1}, "state.metric_failures"),
        ({"metric_failures": True}, "state.metric_failures"),
        ({"recreates": 1.0}, "state.recreates"),
        ({"paused": "yes"}, "state.paused"),
        ({"override": [0, 5.0]}, "state.override"),
        ({"override": [2]}, "state.override"),
    ],
)
def test_garbage_is_rejected_naming_the_key(data: Any, names: str) -> None:
    with pytest.raises(ValueError, match=names):
        from_dict(data)


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=5),
        lambda kids: (
            st.lists(kids, max_size=3)
            | st.dictionaries(
                st.sampled_from(("up_history", "events", "override", "paused", "x")),
                kids,
                max_size=3,
            )
        ),
        max_leaves=10,
    )
)
def test_random_json_never_raises_anything_but_value_error(data: Any) -> None:
    try:
        from_dict(data)
    except ValueError:
        pass


def test_state_stays_small_over_a_long_noisy_run() -> None:
    """A week at 15 s with the largest windows and wildly changing load stays < 4 KB."""
    from .builders import metric, policy, rules

    p = policy(
        metrics=(
            metric("waiting"),
            metric("kv", "utilization", 0.8),
            metric("backlog", "value", 20),
        ),
        max=1000,
        scale_up=rules(window=300.0, policies=(("replicas", 4, 600.0), ("percent", 50, 300.0))),
        scale_down=rules(window=600.0, policies=(("percent", 10, 600.0),)),
    )
    s = initial_state()
    replicas = 5
    largest = 0
    for i in range(7 * 24 * 240):
        v = float((i * 7919) % 997)
        r = {"waiting": v, "kv": (i % 13) / 10, "backlog": float((i * 31) % 500)}
        d, s = decide(p, s, Observation(DeploymentState("ready", replicas), r), T0 + 15 * i)
        replicas = d.replicas
        if i % 97 == 0:
            largest = max(largest, len(json.dumps(to_dict(s))))
    assert largest <= 4096, largest


def _core_state_calls() -> list[tuple[str, int, str]]:
    """Every `CoreState(...)` call in the package: (file, line, enclosing scope)."""
    root = Path(__file__).resolve().parents[2] / "autoscaler"
    found: list[tuple[str, int, str]] = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        scopes: dict[ast.AST, str] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                for inner in ast.walk(node):
                    scopes.setdefault(inner, node.name)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name == "CoreState":
                rel = path.relative_to(root.parent).as_posix()
                found.append((rel, node.lineno, scopes.get(node, "<module>")))
    return found


def test_core_state_is_only_built_by_evolve() -> None:
    """A state is the initial value with fields replaced by name: the only constructor calls
    are the module-level initial value and `evolve`, both in state.py (a positional 15-argument
    call in decide.py once put two fields in each other's place after a merge); `advance`
    (keyword-only) sets each field by name on a draft."""
    calls = _core_state_calls()
    where = {(f, scope) for f, _, scope in calls}
    state_py = "autoscaler/core/state.py"
    assert where == {(state_py, "<module>"), (state_py, "evolve")}
    assert len(calls) == 2, calls


@given(states, states)
def test_advance_makes_a_core_state_like_any_other(before: CoreState, after: CoreState) -> None:
    """What `advance` builds on its draft is a real CoreState: its type, frozen, equal and
    hashing as the same value built by the constructor, and its JSON form the same."""
    moved = {n: getattr(after, n) for n in CoreState.__slots__ if n not in ("paused", "override")}
    made, built = advance(before, **moved), evolve(before, **moved)
    assert type(made) is CoreState
    assert made == built and hash(made) == hash(built)
    assert to_dict(made) == to_dict(built)
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.recreates = 1  # type: ignore[misc]


def test_evolve_names_every_field_and_rejects_unknown_ones() -> None:
    s = evolve(initial_state(), metric_failures=3, override=(2, T0))
    assert (s.metric_failures, s.override, s.recreates) == (3, (2, T0), 0)
    assert evolve(s) == s
    with pytest.raises(TypeError):
        evolve(s, no_such_field=1)


@given(states, states)
def test_advance_is_evolve(before: CoreState, after: CoreState) -> None:
    """`advance` names every field a decision moves, in field order: the same as `evolve`."""
    moved = {n: getattr(after, n) for n in CoreState.__slots__ if n not in ("paused", "override")}
    assert advance(before, **moved) == evolve(before, **moved)
    params = list(inspect.signature(advance).parameters)[1:]
    assert params == [n for n in CoreState.__slots__ if n not in ("paused", "override")]
