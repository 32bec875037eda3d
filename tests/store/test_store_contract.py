"""The `Store` contract, run over both implementations (SQLite file and real PostgreSQL):
state and spec round-trips, write-ahead intents, schema migrations, lease semantics, fencing
of every write method, and durability of a committed intent across SIGKILL."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
import asyncpg
import pytest

from autoscaler.store import FencedError, Store, StoreError
from autoscaler.store import postgres as pg_backend
from autoscaler.store import sqlite as sqlite_backend
from tests.store.conftest import Backend

pytestmark = pytest.mark.anyio

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
async def store(backend: Backend) -> AsyncIterator[Store]:
    s = backend.new_store()
    await s.open()
    try:
        yield s
    finally:
        await s.close()


async def wait_for_lease(store: Store, cluster: str, holder: str, ttl: float) -> Any:
    """Poll until `holder` gets the lease (the previous one's short ttl runs out)."""
    with anyio.fail_after(10):
        while True:
            lease = await store.acquire_lease(cluster, holder, ttl)
            if lease is not None:
                return lease
            await anyio.sleep(0.02)


# ---- state and spec --------------------------------------------------------------------------


async def test_state_round_trips(store: Store) -> None:
    assert await store.load_state("p1") is None
    state = {
        "replicas": 3,
        "history": [[1.5, 2], [3.0, 4]],
        "cooldown_until": 1700000000.25,
        "nested": {"ok": True, "none": None, "text": "ünïcode"},
    }
    await store.save_state("p1", state)
    assert await store.load_state("p1") == state
    await store.save_state("p1", {"replicas": 0})
    assert await store.load_state("p1") == {"replicas": 0}
    assert await store.load_state("p2") is None


async def test_spec_round_trips_separately_from_state(store: Store) -> None:
    spec = {"name": "llama-70b", "provider": "neev", "create": {"gpu": "H100", "count": 2}}
    await store.save_spec("p1", spec)
    assert await store.load_spec("p1") == spec
    assert await store.load_state("p1") is None
    await store.save_state("p2", {"replicas": 1})
    assert await store.load_spec("p2") is None
    assert await store.policies() == ["p1", "p2"]


async def test_bad_values_are_refused_with_a_clear_error(store: Store) -> None:
    with pytest.raises(ValueError, match="not JSON-serializable"):
        await store.save_state("p1", {"x": float("nan")})
    with pytest.raises(ValueError, match="not JSON-serializable"):
        await store.save_state("p1", {"x": object()})
    with pytest.raises(ValueError, match="policy name"):
        await store.save_state("", {})
    with pytest.raises(ValueError, match="intent kind 'explode'"):
        await store.begin_intent("p1", "explode", {})  # type: ignore[arg-type]
    assert await store.load_state("p1") is None
    assert await store.pending_intents() == []


# ---- intents ---------------------------------------------------------------------------------


async def test_intents_begin_pending_resolve(store: Store) -> None:
    a = await store.begin_intent("p1", "scale", {"name": "d1", "replicas": 4})
    b = await store.begin_intent("p2", "delete", {"name": "d2", "spec": {"gpu": "A100"}})
    c = await store.begin_intent("p1", "create", {"name": "d1"})
    assert a.id < b.id < c.id
    assert (a.policy, a.kind, a.payload) == ("p1", "scale", {"name": "d1", "replicas": 4})
    assert a.created_at > 1_600_000_000  # unix seconds
    assert await store.pending_intents() == [a, b, c]
    assert await store.pending_intents("p1") == [a, c]
    assert await store.pending_intents("p2") == [b]
    assert await store.pending_intents("nobody") == []

    await store.resolve_intent(a.id, {"ok": True, "replicas": 4})
    assert await store.pending_intents() == [b, c]
    assert await store.pending_intents("p1") == [c]


async def test_resolving_twice_is_harmless(store: Store) -> None:
    a = await store.begin_intent("p1", "recreate", {"name": "d1"})
    await store.resolve_intent(a.id, {"ok": True})
    await store.resolve_intent(a.id, {"ok": False, "error": "late duplicate"})
    assert await store.pending_intents() == []


async def test_resolving_an_unknown_intent_is_an_error(store: Store) -> None:
    with pytest.raises(StoreError, match="intent 999999 does not exist"):
        await store.resolve_intent(999999, {"ok": True})


async def test_check_writable(store: Store) -> None:
    assert await store.check_writable() is True


async def test_calls_on_a_closed_store_raise_store_error(backend: Backend) -> None:
    s = backend.new_store()
    with pytest.raises(StoreError, match="not open"):
        await s.load_state("p1")


# ---- migrations ------------------------------------------------------------------------------


async def schema_rows(backend: Backend) -> list[int]:
    if backend.name == "sqlite":
        path = backend.url.removeprefix("sqlite:///")
        with sqlite3.connect(path) as conn:
            return [r[0] for r in conn.execute("SELECT version FROM schema_version ORDER BY 1")]
    conn = await asyncpg.connect(backend.url)
    try:
        return [r[0] for r in await conn.fetch("SELECT version FROM schema_version ORDER BY 1")]
    finally:
        await conn.close()


async def migrate_to(backend: Backend, version: int) -> None:
    """Build the schema as an older release left it, with a little data in it."""
    if backend.name == "sqlite":
        path = backend.url.removeprefix("sqlite:///")
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            assert sqlite_backend.migrate(conn, upto=version) == version
            conn.execute("INSERT INTO policy_state VALUES ('old', '{\"replicas\": 2}', 0)")
            conn.execute(
                "INSERT INTO intents (policy, kind, payload, created_at) "
                "VALUES ('old', 'delete', '{\"name\": \"d\"}', 1700000000)"
            )
        finally:
            conn.close()
        return
    pconn = await asyncpg.connect(backend.url)
    try:
        assert await pg_backend.migrate(pconn, upto=version) == version
        await pconn.execute(
            "INSERT INTO policy_state (policy, state) VALUES ('old', '{\"replicas\": 2}')"
        )
        await pconn.execute(
            "INSERT INTO intents (policy, kind, payload) "
            "VALUES ('old', 'delete', '{\"name\": \"d\"}')"
        )
    finally:
        await pconn.close()


LATEST = sqlite_backend.SCHEMA_VERSION
assert pg_backend.SCHEMA_VERSION == LATEST, "both backends must share one schema history"


async def test_schema_is_created_and_opening_twice_changes_nothing(fresh_backend: Backend) -> None:
    first = fresh_backend.new_store()
    await first.open()
    await first.save_state("p1", {"replicas": 1})
    await first.close()
    second = fresh_backend.new_store()
    await second.open()
    try:
        assert await second.load_state("p1") == {"replicas": 1}
    finally:
        await second.close()
    assert await schema_rows(fresh_backend) == list(range(1, LATEST + 1))


async def test_a_store_at_an_older_schema_version_migrates(fresh_backend: Backend) -> None:
    await migrate_to(fresh_backend, 1)
    assert await schema_rows(fresh_backend) == [1]
    s = fresh_backend.new_store()
    await s.open()
    try:
        assert await schema_rows(fresh_backend) == list(range(1, LATEST + 1))
        assert await s.load_state("old") == {"replicas": 2}
        [old] = await s.pending_intents("old")
        assert (old.kind, old.payload) == ("delete", {"name": "d"})
        assert await s.check_writable() is True  # the heartbeat table came with version 2
    finally:
        await s.close()


async def test_concurrent_first_opens_do_not_race(fresh_backend: Backend) -> None:
    stores = [fresh_backend.new_store() for _ in range(3)]
    async with anyio.create_task_group() as tg:
        for s in stores:
            tg.start_soon(s.open)
    for s in stores:
        await s.close()
    assert await schema_rows(fresh_backend) == list(range(1, LATEST + 1))


async def test_a_newer_schema_is_refused(fresh_backend: Backend) -> None:
    await migrate_to(fresh_backend, LATEST)
    if fresh_backend.name == "sqlite":
        path = fresh_backend.url.removeprefix("sqlite:///")
        with sqlite3.connect(path) as conn:
            conn.execute("INSERT INTO schema_version VALUES (99, 0)")
    else:
        conn = await asyncpg.connect(fresh_backend.url)
        try:
            await conn.execute("INSERT INTO schema_version (version) VALUES (99)")
        finally:
            await conn.close()
    s = fresh_backend.new_store()
    with pytest.raises(StoreError, match="schema version 99, newer"):
        await s.open()


# ---- lease -----------------------------------------------------------------------------------


async def test_lease_acquire_renew_refuse_release(store: Store) -> None:
    a = await store.acquire_lease("c1", "host-a", 30)
    assert a is not None and (a.holder, a.epoch) == ("host-a", 1)
    renewed = await store.acquire_lease("c1", "host-a", 30)
    assert renewed is not None and renewed.epoch == 1 and renewed.expires_at >= a.expires_at
    assert await store.acquire_lease("c1", "host-b", 30) is None
    # Clusters are independent.
    other = await store.acquire_lease("c2", "host-b", 30)
    assert other is not None and other.epoch == 1

    await store.release_lease("c1", "host-b")  # not the holder: no effect
    assert await store.acquire_lease("c1", "host-b", 30) is None
    await store.release_lease("c1", "host-a")
    b = await store.acquire_lease("c1", "host-b", 30)
    assert b is not None and (b.holder, b.epoch) == ("host-b", 2)
    assert await store.acquire_lease("c1", "host-a", 30) is None


async def test_lease_takeover_after_expiry_increments_the_epoch(store: Store) -> None:
    a = await store.acquire_lease("c1", "host-a", 0.2)
    assert a is not None and a.epoch == 1
    b = await wait_for_lease(store, "c1", "host-b", 30)
    assert (b.holder, b.epoch) == ("host-b", 2)
    # The old holder cannot renew its way back in.
    assert await store.acquire_lease("c1", "host-a", 30) is None


async def test_lapsed_holder_coming_back_starts_a_new_term(store: Store) -> None:
    a = await store.acquire_lease("default", "host-a", 0.2)
    assert a is not None
    await wait_until_fenced(store, a.epoch)
    again = await store.acquire_lease("default", "host-a", 30)
    assert again is not None and (again.holder, again.epoch) == ("host-a", a.epoch + 1)


async def wait_until_fenced(store: Store, epoch: int) -> None:
    """Poll (with a fenced write, which never renews) until the lease of `epoch` expired."""
    with anyio.fail_after(10):
        while True:
            try:
                await store.save_state("probe", {}, epoch=epoch)
            except FencedError:
                return
            await anyio.sleep(0.02)


async def test_bad_ttl_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="ttl"):
        await store.acquire_lease("c1", "host-a", 0)


# ---- fencing ---------------------------------------------------------------------------------

WriteCall = Callable[[Store, int], Awaitable[Any]]


async def _resolve_existing(s: Store, epoch: int) -> None:
    [pending] = await s.pending_intents("fenced")
    await s.resolve_intent(pending.id, {"ok": True}, epoch=epoch)


WRITES: dict[str, WriteCall] = {
    "save_state": lambda s, e: s.save_state("fenced", {"v": "new"}, epoch=e),
    "save_spec": lambda s, e: s.save_spec("fenced", {"v": "new"}, epoch=e),
    "begin_intent": lambda s, e: s.begin_intent("fenced", "scale", {"v": "new"}, epoch=e),
    "resolve_intent": _resolve_existing,
}


async def snapshot(s: Store) -> tuple[Any, ...]:
    return (
        await s.load_state("fenced"),
        await s.load_spec("fenced"),
        [(i.id, i.kind, i.payload) for i in await s.pending_intents()],
    )


@pytest.mark.parametrize("method", sorted(WRITES))
async def test_a_stale_epoch_is_fenced_for_every_write(backend: Backend, method: str) -> None:
    s = backend.new_store(cluster="fence")
    await s.open()
    try:
        await s.save_state("fenced", {"v": "old"})
        await s.save_spec("fenced", {"v": "old"})
        await s.begin_intent("fenced", "delete", {"v": "old"})
        write = WRITES[method]

        with pytest.raises(FencedError, match="no lease"):
            await write(s, 1)  # nobody holds the lease yet
        a = await s.acquire_lease("fence", "host-a", 0.2)
        assert a is not None
        b = await wait_for_lease(s, "fence", "host-b", 30)
        assert b.epoch == a.epoch + 1

        before = await snapshot(s)
        with pytest.raises(FencedError, match=f"epoch {a.epoch} of cluster 'fence'"):
            await write(s, a.epoch)
        with pytest.raises(FencedError):
            await write(s, b.epoch + 1)  # a future epoch is not current either
        assert await snapshot(s) == before

        await write(s, b.epoch)  # the current leader writes
        assert await snapshot(s) != before
    finally:
        await s.close()


async def test_an_expired_lease_fences_its_own_holder(backend: Backend) -> None:
    s = backend.new_store(cluster="fence")
    await s.open()
    try:
        a = await s.acquire_lease("fence", "host-a", 30)
        assert a is not None
        await s.save_state("fenced", {"v": 1}, epoch=a.epoch)
        await s.release_lease("fence", "host-a")
        with pytest.raises(FencedError, match="expired"):
            await s.save_state("fenced", {"v": 2}, epoch=a.epoch)
        assert await s.load_state("fenced") == {"v": 1}
    finally:
        await s.close()


async def test_fencing_refers_to_the_store_cluster(backend: Backend) -> None:
    s = backend.new_store(cluster="blue")
    await s.open()
    try:
        green = await s.acquire_lease("green", "host-a", 30)
        assert green is not None
        with pytest.raises(FencedError, match="cluster 'blue'"):
            await s.save_state("p", {}, epoch=green.epoch)
        blue = await s.acquire_lease("blue", "host-a", 30)
        assert blue is not None
        await s.save_state("p", {}, epoch=blue.epoch)
    finally:
        await s.close()


# ---- durability ------------------------------------------------------------------------------

KILLED_WRITER = textwrap.dedent(
    """
    import os, signal, sys
    import anyio
    from autoscaler.store import open_store

    async def main() -> None:
        store = open_store(sys.argv[1])
        await store.open()
        intent = await store.begin_intent("p1", "delete", {"name": "d1", "spec": {"gpu": "H100"}})
        await store.save_spec("p1", {"name": "d1"})
        print(intent.id, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)

    anyio.run(main)
    """
)


async def test_a_committed_intent_survives_sigkill(backend: Backend) -> None:
    result = await anyio.to_thread.run_sync(
        lambda: subprocess.run(
            [sys.executable, "-c", KILLED_WRITER, backend.url],
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=60,
        )
    )
    assert result.returncode == -signal.SIGKILL, result.stderr
    intent_id = int(result.stdout.strip())
    s = backend.new_store()
    await s.open()
    try:
        [pending] = await s.pending_intents()
        assert pending.id == intent_id
        assert (pending.policy, pending.kind) == ("p1", "delete")
        assert pending.payload == {"name": "d1", "spec": {"gpu": "H100"}}
        assert await s.load_spec("p1") == {"name": "d1"}
    finally:
        await s.close()


# ---- decision history ------------------------------------------------------------------------


def _names() -> tuple[str, str]:
    """Policy names of this test only (the PostgreSQL database lives for the session)."""
    tag = os.urandom(4).hex()
    return f"h1-{tag}", f"h2-{tag}"


def _obs(t: float, replicas: int = 2) -> dict[str, Any]:
    return {"t": t, "status": "ready", "replicas": replicas, "metrics": {"waiting": 3.0}}


def _dec(t: float) -> dict[str, Any]:
    return {"t": t, "action": "none", "replicas": 2, "reasons": ["no_change"], "executed": False}


async def test_history_round_trips_oldest_first(store: Store) -> None:
    p1, p2 = _names()
    assert await store.decision_history(p1) == []
    for i in range(5):
        await store.record_decision(p1, 100.0 + i, _obs(100.0 + i), _dec(100.0 + i))
    await store.record_decision(p2, 50.0, _obs(50.0, 7), _dec(50.0))
    got = await store.decision_history(p1)
    assert [e.t for e in got] == [100.0, 101.0, 102.0, 103.0, 104.0]
    assert got[0].observation == _obs(100.0) and got[0].decision == _dec(100.0)
    assert [e.observation["replicas"] for e in await store.decision_history(p2)] == [7]
    since = await store.decision_history(p1, since=102.5)
    assert [e.t for e in since] == [103.0, 104.0]
    newest = await store.decision_history(p1, limit=2)
    assert [e.t for e in newest] == [103.0, 104.0]


async def test_history_is_bounded_per_policy_on_write(store: Store) -> None:
    p1, p2 = _names()
    for i in range(12):
        await store.record_decision(p1, float(i), _obs(float(i)), _dec(float(i)), keep=4)
        await store.record_decision(p2, float(i), _obs(float(i)), _dec(float(i)), keep=10)
    assert [e.t for e in await store.decision_history(p1)] == [8.0, 9.0, 10.0, 11.0]
    assert len(await store.decision_history(p2)) == 10
    await store.record_decision(p1, 12.0, _obs(12.0), _dec(12.0), keep=1)
    assert [e.t for e in await store.decision_history(p1)] == [12.0]


async def test_history_refuses_bad_values(store: Store) -> None:
    p1, _ = _names()
    with pytest.raises(ValueError, match="finite"):
        await store.record_decision(p1, float("nan"), _obs(1.0), _dec(1.0))
    with pytest.raises(ValueError, match="keep"):
        await store.record_decision(p1, 1.0, _obs(1.0), _dec(1.0), keep=0)
    with pytest.raises(ValueError, match="not JSON-serializable"):
        await store.record_decision(p1, 1.0, {"metrics": {"x": float("inf")}}, _dec(1.0))
    assert await store.decision_history(p1) == []


async def test_history_batches_prune_only_the_named_policies(store: Store) -> None:
    from autoscaler.store.base import HistoryRecord

    p1, p2 = _names()
    batch = [
        HistoryRecord(p, float(i), _obs(float(i)), _dec(float(i)))
        for i in range(6)
        for p in (p1, p2)
    ]
    await store.record_decisions(batch, prune=[p1], keep=3)
    assert [e.t for e in await store.decision_history(p1)] == [3.0, 4.0, 5.0]
    assert len(await store.decision_history(p2)) == 6  # not named: not pruned this time
    bad = [HistoryRecord(p2, 9.0, _obs(9.0), _dec(9.0)), HistoryRecord(p2, float("inf"), {}, {})]
    with pytest.raises(ValueError, match="finite"):
        await store.record_decisions(bad)
    assert len(await store.decision_history(p2)) == 6  # a bad record refuses the whole batch
