"""A policy's stored record (`Store.save_state` / `load_state`): what its runner writes after
each decision and reads back at start. `{"core": CoreState.to_dict(), "route": ...}`: the
decision core's state, and the inference route last seen ready (`SeenRoute.to_json`, never a
credential; why it is kept: `known_route.py`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import structlog

from autoscaler import core
from autoscaler.policy.model import Policy
from autoscaler.providers.base import SeenRoute
from autoscaler.store.base import Store
from autoscaler.textcut import cut

log = structlog.get_logger("autoscaler.runner")


def stored_record(state: core.CoreState, route: SeenRoute | None) -> dict[str, Any]:
    record: dict[str, Any] = {"core": state.to_dict()}
    if route is not None:
        record["route"] = route.to_json()
    return record


async def read_row(
    load: Callable[[str], Awaitable[dict[str, Any] | None]], policy: Policy, what: str
) -> dict[str, Any] | None:
    """A policy's row of the store (`load(policy.name)`), or None when there is none or it
    cannot be read: a torn write or a bad restore left text that is not JSON. Logged as
    `{what}_unreadable`; the callers carry on without it rather than fail every pass."""
    try:
        return await load(policy.name)
    except ValueError as exc:
        log.warning(f"{what}_unreadable", policy=policy.name, error=str(exc))
        return None


async def read_stored(store: Store, policy: Policy) -> tuple[Mapping[str, Any] | None, str]:
    """(the stored record or None when there is none, "") or (None, why it cannot be read):
    a torn write or a bad restore left text that is not JSON (`load_core_state` says it)."""
    try:
        return await store.load_state(policy.name), ""
    except ValueError as exc:
        return None, str(exc)


# How far past this clock a saved time may be before the state reads as garbage: clocks of a
# host or a fleet disagree a little, and a clock stepped back by a minute must not wipe state.
FUTURE_SLACK = 3600.0


def load_core_state(
    policy: Policy, stored: Mapping[str, Any] | None, problem: str, now: float
) -> core.CoreState:
    """The saved core state; a fresh one when there is none. One that cannot be used (not
    JSON, the wrong shape, a newer format, values out of range: `problem`, or what
    `CoreState.from_dict` refuses) is logged once as `state_unreadable`, and the policy goes
    on from a fresh state made safe: what it held only tunes the next decisions (the spec and
    pending intents live in rows of their own), but a fresh state forgets the windows and
    clocks that were holding a scale-down back. So the fresh one is resumed at `now` (as after
    a pause: scale-down waits a whole down-stabilization window) and its idle clock starts at
    `now` (a delete to zero waits a whole `scale_to_zero.after`). Not restored: an admin
    pause or override, cooldowns longer than the down window, a panic hold."""
    if stored is not None and not problem:
        raw = stored.get("core")
        if not isinstance(raw, Mapping):
            problem = f"the record has no core state object (core: {cut(repr(raw), 80)})"
        else:
            try:
                state = core.CoreState.from_dict(dict(raw))
            except (KeyError, TypeError, ValueError) as exc:
                problem = str(exc)
            else:
                late = core.times_after(state, now + FUTURE_SLACK)
                if not late:
                    return state
                problem = f"times after now (by this clock) in {', '.join(late)}"
    if not problem:
        return core.initial_state(policy)
    log.warning(
        "state_unreadable",
        policy=policy.name,
        error=cut(problem, 300),
        then="fresh state: scale-down waits a whole down window, the idle clock starts now",
    )
    return core.with_resumed(core.initial_state(policy), now)


def stored_route(stored: Mapping[str, Any] | None) -> SeenRoute | None:
    """The saved route, or None when there is none or it is not well formed (it only saves a
    held request's wait: never worth refusing a start for). A model name that is not text
    reads as none."""
    raw = stored.get("route") if stored else None
    if isinstance(raw, Mapping) and not isinstance(raw.get("model"), str | None):
        raw = {**raw, "model": None}
    return SeenRoute.from_json(raw)
