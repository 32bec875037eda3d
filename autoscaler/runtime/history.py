"""The decision history's write path: decisions are buffered and written in batches.

Every evaluation of the leader adds one record (the decision and the observation it was made
on, for `autoscaler history` and `replay`). Written one by one that is one more store round
trip (and an fsync on SQLite) per evaluation, on the pool the lease renewals share; batched,
it is one transaction per `flush_every`. Pruning to the store's bound is amortised: a policy
is cut back to its `keep` newest on its first write after start and then every `keep // 10`
writes, so it holds at most about 10 % more than `keep`.

History is best effort: a failed write is logged and the batch dropped, never retried ahead
of the decisions themselves; what was not flushed when the daemon is killed is lost.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import anyio
import structlog

from autoscaler.store.base import HISTORY_KEEP, HistoryRecord, Store, StoreError

log = structlog.get_logger("autoscaler.history")

FLUSH_EVERY = 1.0  # seconds between batches
MAX_PENDING = 50_000  # records held while the store is slow; the oldest go first


class HistoryBuffer:
    def __init__(
        self,
        store: Store,
        *,
        keep: int = HISTORY_KEEP,
        flush_every: float = FLUSH_EVERY,
        max_pending: int = MAX_PENDING,
    ) -> None:
        self.store = store
        self.keep = keep
        self.flush_every = flush_every
        self._pending: deque[HistoryRecord] = deque(maxlen=max_pending)
        self._since_prune: dict[str, int] = {}
        self._prune_every = max(1, keep // 10)
        self.dropped = 0  # records lost to a full buffer or a failed write
        self._lock = anyio.Lock()

    def add(
        self, policy: str, t: float, observation: dict[str, Any], decision: dict[str, Any]
    ) -> None:
        if len(self._pending) == self._pending.maxlen:
            self.dropped += 1
        self._pending.append(HistoryRecord(policy, t, observation, decision))

    def _due_for_pruning(self, records: list[HistoryRecord]) -> list[str]:
        due = []
        for record in records:
            count = self._since_prune.get(record.policy)
            count = self._prune_every if count is None else count + 1
            if count >= self._prune_every:
                due.append(record.policy)
                count = 0
            self._since_prune[record.policy] = count
        return due

    async def flush(self) -> int:
        """Write what is buffered; returns how many records were written."""
        async with self._lock:
            records = list(self._pending)
            self._pending.clear()
            if not records:
                return 0
            try:
                await self.store.record_decisions(
                    records, prune=self._due_for_pruning(records), keep=self.keep
                )
            except ValueError:
                return await self._one_by_one(records)  # one bad record: keep the others
            except StoreError as exc:
                self.dropped += len(records)
                log.warning("history_write_failed", records=len(records), error=str(exc))
                return 0
            return len(records)

    async def _one_by_one(self, records: list[HistoryRecord]) -> int:
        written = 0
        for record in records:
            try:
                await self.store.record_decisions([record], keep=self.keep)
                written += 1
            except (StoreError, ValueError) as exc:
                self.dropped += 1
                log.warning("history_write_failed", policy=record.policy, error=str(exc))
        return written

    async def run(self) -> None:
        """Flush every `flush_every` seconds until cancelled."""
        while True:
            await anyio.sleep(self.flush_every)
            await self.flush()
