"""The decision core's memory between evaluations: one immutable, bounded value per policy.

`CoreState` holds only what later decisions need, each part trimmed by time inside `decide`:
recommendation queues no older than the stabilization windows, scale events no older than the
longest rate-policy period, and a handful of scalars (last action, idle clock, failure
counters, panic deadline, admin pause/override) and the objective stage's memory (its
correction factor, start-up time, peaks and demand profile, see `objective.py`). `to_dict` /
`from_dict` give a JSON-safe form that round-trips exactly; `from_dict` rejects anything else
with ValueError.

Also here: the pure helpers the runtime applies between decisions (`with_paused`,
`with_override`, `action_failed`). Nothing here reads a clock.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .drafts import draft
from .jsonread import COUNT_MAX, count, finite, is_count, is_finite_number
from .objective_memory import ObjectiveMemory, memory_from_dict, memory_to_dict
from .types import Decision

ACTION_KINDS = ("scale_up", "scale_down", "create", "delete")
STATE_VERSION = 1

Entries = tuple[tuple[float, int], ...]


@dataclass(frozen=True, slots=True)
class CoreState:
    up_history: Entries = ()  # (t, recommendation), increasing: the up-window min is first
    down_history: Entries = ()  # (t, recommendation), decreasing: the down-window max is first
    events: Entries = ()  # (t, replica change) of scale actions, for rate policies
    last_action: tuple[float, str] | None = None  # (t, kind) of the last action, for cooldowns
    prev_action: tuple[float, str] | None = None  # the one before: `action_failed` restores it
    idle_since: float | None = None  # first idle evaluation since the last active one
    last_active: float | None = None  # last evaluation with an activation metric above threshold
    metric_failures: int = 0  # consecutive evaluations with a failed metric
    panic_until: float | None = None  # no scale-down before this
    failed_since: float | None = None  # first evaluation that saw the current `failed` spell
    recreates: int = 0  # recreate attempts since the deployment was last ready
    paused: bool = False  # admin pause
    override: tuple[int, float] | None = None  # admin (replicas, until)
    # When an admin pause ended: scale-down waits a whole down window from here, as if the
    # recommendations seen before the pause had been forgotten (they describe another load).
    resumed_at: float | None = None
    objective: ObjectiveMemory | None = None  # the objective stage's memory (objective.py)
    # The last evaluation that reached the stages: the idle clock counts only time watched
    # (decide.py: a gap since then, a stopped daemon or a provider outage, restarts it).
    seen_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)

    @classmethod
    def from_dict(cls, d: object) -> CoreState:
        return from_dict(d)


def initial_state(policy: object = None) -> CoreState:
    """The state before the first decision. `policy` is accepted for symmetry with callers
    that build per-policy state; a fresh state is the same for every policy."""
    return _INITIAL


def with_paused(state: CoreState, paused: bool, now: float | None = None) -> CoreState:
    """Pause or resume. Resuming a paused state at `now` starts the down-stabilization window
    again: no scale-down before `now + scale_down.stabilization_window`."""
    if paused:
        return evolve(state, paused=True, resumed_at=None)
    if state.paused and now is not None:
        return with_resumed(evolve(state, paused=False), now)
    return evolve(state, paused=False)


def with_resumed(state: CoreState, now: float) -> CoreState:
    """A pause ended at `now` (the admin's, or `paused: true` taken out of the policy file):
    scale-down waits a whole down-stabilization window from here, and the idle clock starts
    again (nobody watched the load while paused: it must be seen idle for the whole
    `scale_to_zero.after` before a delete)."""
    if not is_finite_number(now):
        raise ValueError(f"resume time must be a finite epoch time, got {now!r}")
    return evolve(state, resumed_at=float(now), idle_since=None)


def with_override(state: CoreState, replicas: int | None, until: float | None = None) -> CoreState:
    """Hold `replicas` (>= 1) until `until` (epoch seconds); `replicas=None` clears it.

    The held count is still clamped to `replicas.max` and the cost cap at decision time.
    """
    if replicas is None:
        return evolve(state, override=None)
    if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 1:
        raise ValueError(f"override replicas must be an integer >= 1, got {replicas!r}")
    if until is None or not is_finite_number(until):
        raise ValueError(f"override until must be a finite epoch time, got {until!r}")
    return evolve(state, override=(replicas, float(until)))


def action_failed(state: CoreState, decision: Decision, now: float) -> CoreState:
    """Forget the action `decision` recorded at `now`, because the provider call failed.

    Recommendations, idle clock and failure counters stay (they describe the load, not the
    action). A failed recreate keeps its attempt count, so the next try backs off further.
    """
    if decision.action == "none" or state.last_action is None or state.last_action[0] != now:
        return state
    events = state.events
    if decision.action == "scale" and events and events[-1][0] == now:
        events = events[:-1]
    return evolve(state, events=events, last_action=state.prev_action, prev_action=None)


_FIELDS: tuple[str, ...] = CoreState.__slots__
_ALL = operator.attrgetter(*_FIELDS)
_NAMES = frozenset(_FIELDS)

# Every state is this value with fields replaced (`evolve`, or `advance` for the fields a
# decision moves): the only `CoreState(...)` calls in the package are here and in `evolve`
# (`advance` stores each field by name on a draft), so no caller can get the field order wrong
# (tests/core/test_core_state.py::test_core_state_is_only_built_by_evolve checks it).
_INITIAL = CoreState()
_Draft = draft(CoreState)


def evolve(state: CoreState, **changes: Any) -> CoreState:
    """A copy of `state` with `changes`, named by field (an unknown name is a TypeError)."""
    if not _NAMES.issuperset(changes):
        unknown = sorted(set(changes) - _NAMES)
        raise TypeError(f"CoreState has no field(s) {unknown}")
    # each field: its change if given, else the previous value (in field order: one call)
    return CoreState(*map(changes.get, _FIELDS, _ALL(state)))  # type: ignore[arg-type]


def advance(
    state: CoreState,
    *,
    up_history: Entries,
    down_history: Entries,
    events: Entries,
    last_action: tuple[float, str] | None,
    prev_action: tuple[float, str] | None,
    idle_since: float | None,
    last_active: float | None,
    metric_failures: int,
    panic_until: float | None,
    failed_since: float | None,
    recreates: int,
    resumed_at: float | None,
    objective: ObjectiveMemory | None,
    seen_at: float | None,
) -> CoreState:
    """`state` with every field a decision moves replaced, by name; the admin's pause and
    override stay. `evolve`'s fast form for the one call every decision makes: no keyword dict
    to merge, and each field stored by name on a draft (`drafts.py`: no frozen `__init__`).
    Its parameters are the fields in order (tests/core/test_core_state.py::
    test_advance_is_evolve checks it)."""
    s: Any = _Draft()
    s.up_history = up_history
    s.down_history = down_history
    s.events = events
    s.last_action = last_action
    s.prev_action = prev_action
    s.idle_since = idle_since
    s.last_active = last_active
    s.metric_failures = metric_failures
    s.panic_until = panic_until
    s.failed_since = failed_since
    s.recreates = recreates
    s.paused = state.paused
    s.override = state.override
    s.resumed_at = resumed_at
    s.objective = objective
    s.seen_at = seen_at
    s.__class__ = CoreState
    return s


def times_after(state: CoreState, limit: float) -> list[str]:
    """The fields holding a time after `limit`, of those that only ever hold a past one (all
    but the override's end and the panic hold's, which are deadlines). A state saved by a
    clock far ahead, or garbage: a `last_action` in the future holds every scale behind its
    cooldown for as long."""
    late = [
        name
        for name, entries in (
            ("up_history", state.up_history),
            ("down_history", state.down_history),
            ("events", state.events),
        )
        if any(t > limit for t, _ in entries)
    ]
    for name, action in (("last_action", state.last_action), ("prev_action", state.prev_action)):
        if action is not None and action[0] > limit:
            late.append(name)
    for name in ("idle_since", "last_active", "failed_since", "resumed_at", "seen_at"):
        t = getattr(state, name)
        if t is not None and t > limit:
            late.append(name)
    return late


# --- JSON form ------------------------------------------------------------------------------


def to_dict(state: CoreState) -> dict[str, Any]:
    return {
        "version": STATE_VERSION,
        "up_history": [[t, r] for t, r in state.up_history],
        "down_history": [[t, r] for t, r in state.down_history],
        "events": [[t, c] for t, c in state.events],
        "last_action": list(state.last_action) if state.last_action else None,
        "prev_action": list(state.prev_action) if state.prev_action else None,
        "idle_since": state.idle_since,
        "last_active": state.last_active,
        "metric_failures": state.metric_failures,
        "panic_until": state.panic_until,
        "failed_since": state.failed_since,
        "recreates": state.recreates,
        "paused": state.paused,
        "override": list(state.override) if state.override else None,
        "resumed_at": state.resumed_at,
        "objective": memory_to_dict(state.objective) if state.objective is not None else None,
        "seen_at": state.seen_at,
    }


def _time(d: Mapping[str, Any], key: str, optional: bool = True) -> float | None:
    v = d.get(key)
    if v is None and optional:
        return None
    return finite(v, f"state.{key}")


def _entries(d: Mapping[str, Any], key: str, signed: bool = False) -> Entries:
    raw = d.get(key, [])
    if not isinstance(raw, list):
        raise ValueError(f"state.{key}: expected a list of [t, n] pairs, got {raw!r}")
    out = []
    for i, item in enumerate(raw):
        where = f"state.{key}[{i}]"
        if not isinstance(item, list | tuple) or len(item) != 2:
            raise ValueError(f"{where}: expected [t, n], got {item!r}")
        t, n = item
        if not is_finite_number(t):
            raise ValueError(f"{where}: time must be a finite number, got {t!r}")
        if not is_count(n, -COUNT_MAX if signed else 0):
            raise ValueError(f"{where}: expected an integer{'' if signed else ' >= 0'}, got {n!r}")
        out.append((float(t), n))
    return tuple(out)


def _action(d: Mapping[str, Any], key: str) -> tuple[float, str] | None:
    v = d.get(key)
    if v is None:
        return None
    if (
        not isinstance(v, list | tuple)
        or len(v) != 2
        or not is_finite_number(v[0])
        or v[1] not in ACTION_KINDS
    ):
        raise ValueError(f"state.{key}: expected [t, one of {list(ACTION_KINDS)}], got {v!r}")
    return (float(v[0]), v[1])


def from_dict(d: object) -> CoreState:
    """Rebuild a state from `to_dict` output; ValueError naming the bad key otherwise."""
    if not isinstance(d, Mapping):
        raise ValueError(f"state: expected an object, got {type(d).__name__}")
    unknown = set(d) - set(_FIELDS) - {"version"}
    if unknown:
        raise ValueError(f"state: unknown keys {sorted(unknown)}")
    version = d.get("version", STATE_VERSION)
    if version != STATE_VERSION:
        newer = is_count(version) and version > STATE_VERSION
        raise ValueError(
            f"state.version: expected {STATE_VERSION}, got {version!r}"
            + (" (written by a newer autoscaler)" if newer else "")
        )
    paused = d.get("paused", False)
    if not isinstance(paused, bool):
        raise ValueError(f"state.paused: expected true or false, got {paused!r}")
    override_raw = d.get("override")
    override = None
    if override_raw is not None:
        if (
            not isinstance(override_raw, list | tuple)
            or len(override_raw) != 2
            or not is_count(override_raw[0], 1)
            or not is_finite_number(override_raw[1])
        ):
            raise ValueError(
                f"state.override: expected [replicas >= 1, until], got {override_raw!r}"
            )
        override = (override_raw[0], float(override_raw[1]))
    return evolve(
        _INITIAL,
        up_history=_entries(d, "up_history"),
        down_history=_entries(d, "down_history"),
        events=_entries(d, "events", signed=True),
        last_action=_action(d, "last_action"),
        prev_action=_action(d, "prev_action"),
        idle_since=_time(d, "idle_since"),
        last_active=_time(d, "last_active"),
        metric_failures=count(d.get("metric_failures", 0), "state.metric_failures"),
        panic_until=_time(d, "panic_until"),
        failed_since=_time(d, "failed_since"),
        recreates=count(d.get("recreates", 0), "state.recreates"),
        paused=paused,
        override=override,
        resumed_at=_time(d, "resumed_at"),
        objective=None if d.get("objective") is None else memory_from_dict(d["objective"]),
        seen_at=_time(d, "seen_at"),
    )
