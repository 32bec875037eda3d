"""The durable state store interface: per-policy core state, captured specs, and write-ahead
intents for provider actions; plus the leader lease for several daemons (PostgreSQL).

Implementations: SQLite (embedded default) and PostgreSQL; one contract test suite runs over
both. All values are JSON-serializable dicts; the store never interprets core state.

Write-ahead protocol for every provider action:
    intent = await store.begin_intent(policy, kind, payload)   # committed before the call
    ... provider call ...
    await store.resolve_intent(intent.id, outcome)             # committed after it
On start the daemon reconciles every `pending_intents()` before anything else.

Fencing: with leader election, every write carries the writer's lease epoch; a write with a
stale epoch raises `FencedError` and changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

IntentKind = Literal["scale", "delete", "create", "recreate"]


class StoreError(Exception):
    pass


class FencedError(StoreError):
    """This daemon's lease epoch is stale: another daemon leads now. Stop acting."""


@dataclass(frozen=True, slots=True)
class Intent:
    id: int
    policy: str
    kind: IntentKind
    payload: dict[str, Any]  # deployment name, target replicas, spec, provider profile ...
    created_at: float  # unix seconds
    # Why the stored row cannot be used (its payload is not a JSON object, its kind is not one
    # of `IntentKind`), with `payload` empty; "" for a sound row. Reading a broken row must not
    # fail the reading of every other one (`codec.stored_intent`).
    unreadable: str = ""


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One decision the daemon made and the observation it was made on (`autoscaler history`).
    `observation` is a `replay` input line, `decision` its output line plus `executed`."""

    t: float  # unix seconds of the decision (the core's `now`)
    observation: dict[str, Any]
    decision: dict[str, Any]


# Decisions kept per policy at most (pruned on write, runtime/history.py: 1,800 to 2,000 held):
# 7.5 to 8 h at a 15 s interval.
HISTORY_KEEP = 2000


@dataclass(frozen=True, slots=True)
class HistoryRecord:
    """One decision to append (`record_decisions`)."""

    policy: str
    t: float
    observation: dict[str, Any]
    decision: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Lease:
    holder: str
    epoch: int
    expires_at: float  # by the database's clock


class Store(Protocol):
    async def open(self) -> None:
        """Connect; create or migrate the schema."""
        ...

    async def close(self) -> None: ...

    async def check_writable(self) -> bool:
        """For /readyz: True after a real commit, else StoreError saying why."""
        ...

    async def load_state(self, policy: str) -> dict[str, Any] | None: ...

    async def save_state(
        self, policy: str, state: dict[str, Any], *, epoch: int | None = None
    ) -> None: ...

    async def load_spec(self, policy: str) -> dict[str, Any] | None:
        """The captured deployment spec (name, provider, create spec) kept across zero."""
        ...

    async def save_spec(
        self, policy: str, spec: dict[str, Any], *, epoch: int | None = None
    ) -> None: ...

    async def begin_intent(
        self, policy: str, kind: IntentKind, payload: dict[str, Any], *, epoch: int | None = None
    ) -> Intent: ...

    async def resolve_intent(
        self, intent_id: int, outcome: dict[str, Any], *, epoch: int | None = None
    ) -> None: ...

    async def pending_intents(self, policy: str | None = None) -> list[Intent]: ...

    async def policies(self) -> list[str]:
        """Policy names that have stored state."""
        ...

    async def record_decision(
        self,
        policy: str,
        t: float,
        observation: dict[str, Any],
        decision: dict[str, Any],
        *,
        keep: int = HISTORY_KEEP,
    ) -> None:
        """Append one decision; the policy keeps only its `keep` newest (pruned here)."""
        ...

    async def record_decisions(
        self,
        records: Sequence[HistoryRecord],
        *,
        prune: Iterable[str] = (),
        keep: int = HISTORY_KEEP,
    ) -> None:
        """Append many decisions in one transaction, then cut each policy named in `prune`
        back to its `keep` newest (the daemon prunes a policy every so many writes, below its
        bound, so a busy fleet does not pay a prune per decision)."""
        ...

    async def decision_history(
        self, policy: str, since: float | None = None, limit: int | None = None
    ) -> list[HistoryEntry]:
        """The policy's recorded decisions at or after `since`, oldest first; with `limit`,
        the newest `limit` of them."""
        ...

    # Leader election. SQLite (single daemon) grants the lease to whoever asks.
    async def acquire_lease(self, cluster: str, holder: str, ttl: float) -> Lease | None:
        """Take the lease when free or expired (new epoch), or renew it when held by `holder`
        (same epoch). None when another holder has an unexpired lease."""
        ...

    async def release_lease(self, cluster: str, holder: str) -> None: ...
