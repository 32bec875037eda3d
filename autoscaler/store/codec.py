"""JSON encoding shared by the store backends, input checks common to both, and the mapping
of the per-policy documents (state, spec) onto their tables.

Both backends store the same JSON text, so a value that round-trips through one round-trips
through the other. NaN and infinity are refused: PostgreSQL's jsonb cannot hold them, and a
state that loads differently per backend would be a silent bug.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any, get_args

from autoscaler.store.base import HISTORY_KEEP, HistoryRecord, Intent, IntentKind
from autoscaler.textcut import cut, one_line

INTENT_KINDS: tuple[str, ...] = get_args(IntentKind)


def encode(value: dict[str, Any], what: str) -> str:
    if not isinstance(value, dict):
        raise ValueError(f"{what} must be a JSON object (dict), got {type(value).__name__}")
    try:
        return json.dumps(value, separators=(",", ":"), allow_nan=False, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} is not JSON-serializable: {exc}") from None


def decode(text: str) -> dict[str, Any]:
    """A stored JSON object; ValueError for anything else (nesting too deep to read too)."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise ValueError("stored JSON is nested too deeply to read") from None
    if not isinstance(value, dict):
        raise ValueError(f"stored JSON is a {type(value).__name__}, expected an object")
    return value


def stored_intent(
    intent_id: int, policy: str, kind: str, payload: str, created_at: float
) -> Intent:
    """An `intents` row as an Intent. A payload that is not a JSON object, or a kind this
    version does not know (a row written by hand, a bad restore, a newer autoscaler), gives
    an Intent marked `unreadable` with an empty payload: the caller decides what to do with
    it, and the other rows read as usual."""
    problem = "" if kind in INTENT_KINDS else f"unknown intent kind {cut(repr(kind), 60)}"
    value: dict[str, Any] = {}
    try:
        value = decode(payload)
    except ValueError as exc:
        problem = problem or f"payload is not a JSON object: {one_line(str(exc), 200)}"
    payload_read = {} if problem else value
    return Intent(intent_id, policy, kind, payload_read, created_at, problem)  # type: ignore[arg-type]


def check_policy(policy: str) -> None:
    if not isinstance(policy, str) or not policy:
        raise ValueError(f"policy name must be a non-empty string, got {policy!r}")


def check_kind(kind: str) -> None:
    if kind not in INTENT_KINDS:
        raise ValueError(f"intent kind {kind!r} is not one of {list(INTENT_KINDS)}")


def check_ttl(ttl: float) -> None:
    if not ttl > 0:
        raise ValueError(f"lease ttl must be positive seconds, got {ttl!r}")


class PolicyDocuments:
    """The per-policy JSON documents and where each lives: one table and column per kind.

    A backend supplies `_load(table, column, policy)` and `_save(table, column, policy, value,
    epoch)`; the Store protocol's state and spec methods are defined here once, so both
    backends agree on the schema by construction.
    """

    async def _load(self, table: str, column: str, policy: str) -> dict[str, Any] | None:
        raise NotImplementedError

    async def _save(
        self, table: str, column: str, policy: str, value: dict[str, Any], epoch: int | None
    ) -> None:
        raise NotImplementedError

    async def load_state(self, policy: str) -> dict[str, Any] | None:
        return await self._load("policy_state", "state", policy)

    async def save_state(
        self, policy: str, state: dict[str, Any], *, epoch: int | None = None
    ) -> None:
        await self._save("policy_state", "state", policy, state, epoch)

    async def load_spec(self, policy: str) -> dict[str, Any] | None:
        """The captured deployment spec kept across zero."""
        return await self._load("policy_spec", "spec", policy)

    async def save_spec(
        self, policy: str, spec: dict[str, Any], *, epoch: int | None = None
    ) -> None:
        await self._save("policy_spec", "spec", policy, spec, epoch)

    # The decision history: a backend supplies the batch write, one record is a batch of one.

    async def record_decisions(
        self, records: Sequence[HistoryRecord], *, prune: Iterable[str] = (), keep: int = 0
    ) -> None:
        raise NotImplementedError

    async def record_decision(
        self,
        policy: str,
        t: float,
        observation: dict[str, Any],
        decision: dict[str, Any],
        *,
        keep: int = HISTORY_KEEP,
    ) -> None:
        record = HistoryRecord(policy, t, observation, decision)
        await self.record_decisions([record], prune=[policy], keep=keep)


def check_history(t: float, keep: int, limit: int | None) -> None:
    if (
        isinstance(t, bool)
        or not isinstance(t, int | float)
        or t != t
        or t
        in (
            float("inf"),
            float("-inf"),
        )
    ):
        raise ValueError(f"decision time must be finite unix seconds, got {t!r}")
    if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
        raise ValueError(f"history keep must be a whole number >= 1, got {keep!r}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"history limit must be a whole number >= 1, got {limit!r}")


def encode_history(
    records: Sequence[HistoryRecord], keep: int
) -> list[tuple[str, float, str, str]]:
    """(policy, t, observation JSON, decision JSON) rows, every record checked first so a bad
    one refuses the whole batch before anything is written."""
    rows = []
    for r in records:
        check_policy(r.policy)
        check_history(r.t, keep, None)
        rows.append(
            (
                r.policy,
                float(r.t),
                encode(r.observation, f"observation of policy {r.policy!r}"),
                encode(r.decision, f"decision of policy {r.policy!r}"),
            )
        )
    return rows
