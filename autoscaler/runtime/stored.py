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


async def read_stored(store: Store, policy: Policy) -> Mapping[str, Any] | None:
    """The stored record (`read_row`). Unreadable, the policy starts from a fresh state: what
    it held only tunes the next decisions (windows, clocks), while the spec and pending
    intents live in rows of their own."""
    return await read_row(store.load_state, policy, "state")


def load_core_state(policy: Policy, stored: Mapping[str, Any] | None) -> core.CoreState:
    """The saved core state, or a fresh one when there is none or it cannot be read (logged)."""
    if stored and isinstance(stored.get("core"), Mapping):
        try:
            return core.CoreState.from_dict(dict(stored["core"]))
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("state_unreadable", policy=policy.name, error=str(exc))
    return core.initial_state(policy)


def stored_route(stored: Mapping[str, Any] | None) -> SeenRoute | None:
    """The saved route, or None when there is none or it is not well formed (it only saves a
    held request's wait: never worth refusing a start for). A model name that is not text
    reads as none."""
    raw = stored.get("route") if stored else None
    if isinstance(raw, Mapping) and not isinstance(raw.get("model"), str | None):
        raw = {**raw, "model": None}
    return SeenRoute.from_json(raw)
