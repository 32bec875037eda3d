"""A policy's stored record (`Store.save_state` / `load_state`): what its runner writes after
each decision and reads back at start. `{"core": CoreState.to_dict(), "route": ...}`: the
decision core's state, and the inference route last seen ready (`SeenRoute.to_json`, never a
credential; why it is kept: `known_route.py`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import structlog

from autoscaler import core
from autoscaler.policy.model import Policy
from autoscaler.providers.base import SeenRoute

log = structlog.get_logger("autoscaler.runner")


def stored_record(state: core.CoreState, route: SeenRoute | None) -> dict[str, Any]:
    record: dict[str, Any] = {"core": state.to_dict()}
    if route is not None:
        record["route"] = route.to_json()
    return record


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
