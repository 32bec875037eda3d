"""The decision history's batching writer over a real SQLite store: batches, amortised
pruning to about the bound, one bad record never costs the others, a failed store is counted."""

from __future__ import annotations

from pathlib import Path

import pytest

from autoscaler.runtime.history import HistoryBuffer
from autoscaler.store.sqlite import SQLiteStore

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def obs(t: float, value: float = 1.0) -> dict[str, object]:
    return {"t": t, "status": "ready", "replicas": 1, "metrics": {"m": value}}


async def test_batches_and_bounded_pruning(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "s.db"))
    await store.open()
    try:
        buffer = HistoryBuffer(store, keep=20)  # prunes on the first write, then every 2
        for i in range(100):
            buffer.add("a", float(i), obs(float(i)), {"action": "none"})
            buffer.add("b", float(i), obs(float(i)), {"action": "none"})
            if i % 7 == 0:
                assert await buffer.flush() > 0
        await buffer.flush()
        assert await buffer.flush() == 0  # nothing left
        for policy in ("a", "b"):
            kept = await store.decision_history(policy)
            assert 20 <= len(kept) <= 22, len(kept)  # keep + keep // 10 at most
            assert kept[-1].t == 99.0 and kept[-1].observation == obs(99.0)
    finally:
        await store.close()


async def test_a_bad_record_does_not_cost_the_others(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "s.db"))
    await store.open()
    try:
        buffer = HistoryBuffer(store)
        buffer.add("a", 1.0, obs(1.0), {"action": "none"})
        buffer.add("a", 2.0, obs(2.0, float("nan")), {"action": "none"})  # not JSON
        buffer.add("a", 3.0, obs(3.0), {"action": "none"})
        assert await buffer.flush() == 2
        assert buffer.dropped == 1
        assert [e.t for e in await store.decision_history("a")] == [1.0, 3.0]
    finally:
        await store.close()
    buffer.add("a", 4.0, obs(4.0), {"action": "none"})
    assert await buffer.flush() == 0  # the store is closed: logged and counted, not raised
    assert buffer.dropped == 2


async def test_a_full_buffer_drops_the_oldest(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "s.db"))
    await store.open()
    try:
        buffer = HistoryBuffer(store, max_pending=3)
        for i in range(5):
            buffer.add("a", float(i), obs(float(i)), {"action": "none"})
        assert buffer.dropped == 2
        await buffer.flush()
        assert [e.t for e in await store.decision_history("a")] == [2.0, 3.0, 4.0]
    finally:
        await store.close()
