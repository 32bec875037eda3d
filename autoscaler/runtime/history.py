"""The decision history's write path: decisions are buffered and written in batches.

Every evaluation of the leader adds one record (the decision and the observation it was made
on, for `autoscaler history` and `replay`). Written one by one that is one more store round
trip (and an fsync on SQLite) per evaluation, on the pool the lease renewals share; batched,
it is one transaction per `flush_every`. Pruning is amortised and never lets a policy hold
more than `keep` decisions after a batch: on its first write after start (or after a batch
that failed) and then every `keep // 10` writes, a policy is cut back to its `keep - keep //
10` newest, so the writes until the next cut fill it to `keep - 1` at most; once it has that
many it holds between the two. Why not cut to `keep` at every batch: one DELETE per policy of
the batch (67 for 1,000 policies at 15 s) cost ~5 ms more per batch on SQLite and ~30 ms more
on PostgreSQL, against ~2-3 ms unpruned; this costs what the old amortised cut did.

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
        self._cut_to = max(1, keep - self._prune_every)  # keep 1: cut at every write
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
                    records, prune=self._due_for_pruning(records), keep=self._cut_to
                )
            except ValueError:
                return await self._one_by_one(records)  # one bad record: keep the others
            except StoreError as exc:
                self._forget(records)
                self.dropped += len(records)
                log.warning("history_write_failed", records=len(records), error=str(exc))
                return 0
            return len(records)

    def _forget(self, records: list[HistoryRecord]) -> None:
        """A batch not written as counted: its policies are cut at their next write."""
        for record in records:
            self._since_prune.pop(record.policy, None)

    async def _one_by_one(self, records: list[HistoryRecord]) -> int:
        """Each record in its own write, cut with it (a rare path: a record the store refused)."""
        self._forget(records)
        written = 0
        for record in records:
            try:
                await self.store.record_decisions(
                    [record], prune=[record.policy], keep=self._cut_to
                )
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
