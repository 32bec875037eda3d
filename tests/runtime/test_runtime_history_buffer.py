"""The decision history's batching writer over real stores: batches, amortised pruning that
keeps every policy within its bound (SQLite and PostgreSQL), one bad record never costs the
others, a failed store is counted."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from autoscaler.runtime.history import HistoryBuffer
from autoscaler.store import open_store
from autoscaler.store.sqlite import SQLiteStore
from tests.services import require_tcp
from tests.store.conftest import PG_PORT, create_database, drop_database, pg_dsn

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def obs(t: float, value: float = 1.0) -> dict[str, object]:
    return {"t": t, "status": "ready", "replicas": 1, "metrics": {"m": value}}


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh store of each backend: SQLite in a file, a database of its own on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 's.db'}"
        return
    require_tcp("postgresql", PG_PORT)
    database = create_database()
    try:
        yield pg_dsn(database)
    finally:
        drop_database(database)


@pytest.mark.parametrize("keep", [1, 2, 20, 200])
async def test_a_policy_never_holds_more_than_keep_after_a_batch(store_url: str, keep: int) -> None:
    """Batches of every shape (one record, several of a policy, a backlog of hundreds), and a
    batch the store fails: after each, no policy holds more than `keep`, and one that has
    written `keep` holds at least `keep - prune_every`."""
    store = open_store(store_url)
    await store.open()
    buffer = HistoryBuffer(store, keep=keep)
    least = keep - max(1, keep // 10)  # cut to every `keep // 10` writes
    t, written = 0.0, {"a": 0, "b": 0}
    try:
        for size in [1, 3, 1, 7, 2, 1, 1, 450, 1, 2, 5, 1, 1, 1, 3, 40, 1, 1, 2, 1, 9, 1, 1]:
            if size == 40:  # a batch the store fails: its policies are cut at the next write
                await store.close()
                buffer.add("a", t, obs(t), {"action": "none"})
                assert await buffer.flush() == 0 and buffer.dropped == 1
                await store.open()
            for i in range(size):
                t += 1.0
                for policy in ("a", "b")[: 1 + i % 2]:
                    buffer.add(policy, t, obs(t), {"action": "none"})
                    written[policy] += 1
            assert await buffer.flush() > 0
            for policy, count in written.items():
                held = len(await store.decision_history(policy))
                assert held <= keep and held >= min(count, least), (
                    policy,
                    held,
                )
        kept = await store.decision_history("a")
        assert kept[-1].t == t and kept[-1].observation == obs(t)
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
