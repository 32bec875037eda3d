"""The daemon while its state store is in trouble, in this process against the NeevCloud
simulator over HTTP: the SQLite file deleted (and its folder), locked by another process's
long write transaction, and PostgreSQL connections terminated. It keeps evaluating (holding
what it cannot record first), reports the store's trouble in /readyz and /status, and
recovers when the store is back, with nothing it held lost."""

from __future__ import annotations

import secrets
import shutil
import sqlite3
from pathlib import Path

import asyncpg
import pytest

from autoscaler.store.sqlite import SQLiteStore
from tests.runtime.daemon_support import await_for, sim_server
from tests.runtime.test_runtime_loop_faults import evaluations, http_policy, replicas, running
from tests.runtime.test_runtime_store_garbage import deployed, make_store, raw
from tests.services import require_tcp
from tests.sources.httpserver import serving
from tests.store.conftest import PG_ADMIN_DSN, PG_PORT, pg_dsn

pytestmark = pytest.mark.anyio

SPEC = '{"name": "kept", "provider": "sim", "create": {"catalog_id": "from-the-capture"}}'


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def stored(path: Path) -> tuple[object, object]:
    """(state, spec) of policy `kept` in the file at `path`, read by a store of its own."""
    store = SQLiteStore(str(path))
    await store.open()
    try:
        return await store.load_state("kept"), await store.load_spec("kept")
    finally:
        await store.close()


def remove_file(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


@pytest.mark.parametrize("folder_too", [False, True], ids=["file", "folder"])
async def test_a_state_file_deleted_while_running_is_written_again(
    tmp_path: Path, folder_too: bool
) -> None:
    """The old code kept writing into the deleted file (gone at the next start, the captured
    spec with it) and /readyz said all was well. Now the file is written again from what the
    open connection still holds, at once, or once its folder is back (till then /readyz and
    /status say so)."""
    folder = tmp_path / "state"
    folder.mkdir()
    path = await make_store(folder)
    raw(path, ("INSERT INTO policy_spec VALUES ('kept', ?, 1.0)", (SPEC,)))
    with sim_server(provision_seconds=0.2) as sim, serving() as src:
        await deployed(sim, src, "kept", 40)
        policy = http_policy("kept", src.url("/depth"))
        state = f"sqlite:///{path}"
        async with running(tmp_path, sim, {"kept": policy}, state=state) as daemon:
            await await_for(lambda: replicas(sim, "kept") == 4, 30, "scaled")
            if folder_too:
                shutil.rmtree(folder)
                await await_for(
                    lambda: "was deleted" in str(daemon.status()["policies"]["kept"]["last_error"]),
                    30,
                    "the trouble in /status",
                )
                ok, problems = await daemon.ready()
                assert not ok and "was deleted while the daemon ran" in str(problems), problems
                folder.mkdir()
            else:
                remove_file(path)
            start = evaluations(daemon, "kept")
            await await_for(lambda: evaluations(daemon, "kept") >= start + 3, 30, "evaluations")
            await await_for(lambda: path.exists(), 30, "the file written again")
            assert await daemon.ready() == (True, [])
        assert replicas(sim, "kept") == 4
    state, spec = await stored(path)
    assert spec is not None and spec["create"]["catalog_id"] == "from-the-capture"
    assert state is not None and "core" in state  # type: ignore[operator]


async def test_a_state_file_locked_by_another_writer(tmp_path: Path) -> None:
    """Another process holds a write transaction: the daemon's writes fail after the busy
    timeout, so it holds (the decision's state is saved before any action), says why in
    /readyz and /status, keeps evaluating, and writes again once the lock is gone."""
    path = await make_store(tmp_path)
    with sim_server(provision_seconds=0.2) as sim, serving() as src:
        depth, _ = await deployed(sim, src, "kept", 40)
        async with running(tmp_path, sim, {"kept": http_policy("kept", src.url("/depth"))}) as d:
            await await_for(lambda: replicas(sim, "kept") == 4, 30, "scaled")
            holder = sqlite3.connect(path, timeout=30, isolation_level=None)
            try:
                holder.execute("BEGIN IMMEDIATE")
                depth.value = 5  # the load goes: a scale-down it must not make unrecorded
                await await_for(
                    lambda: "locked" in str(d.status()["policies"]["kept"]["last_error"]),
                    60,
                    "the lock in /status",
                )
                ok, problems = await d.ready()
                assert not ok and "locked" in str(problems), problems
                assert replicas(sim, "kept") == 4
            finally:
                holder.execute("ROLLBACK")
                holder.close()
            await await_for(lambda: replicas(sim, "kept") == 1, 60, "scaled down once written")
            assert await d.ready() == (True, [])


async def test_postgresql_connections_terminated_mid_run(tmp_path: Path) -> None:
    """Every backend of the daemon's own database terminated, twice, while it runs: it keeps
    evaluating, leads again, and acts on the next change of load (confirms what the pool's
    reconnect and the election already did)."""
    require_tcp("postgresql", PG_PORT)
    database = f"autoscaler_test_{secrets.token_hex(6)}"
    await admin(f'CREATE DATABASE "{database}"')
    try:
        with sim_server(provision_seconds=0.2) as sim, serving() as src:
            depth, _ = await deployed(sim, src, "kept", 40)
            policy = http_policy("kept", src.url("/depth"))
            async with running(tmp_path, sim, {"kept": policy}, state=pg_dsn(database)) as daemon:
                await await_for(lambda: replicas(sim, "kept") == 4, 30, "scaled")
                for _ in range(2):
                    await admin(TERMINATE, database)
                    start = evaluations(daemon, "kept")
                    await await_for(
                        lambda s=start: evaluations(daemon, "kept") >= s + 3, 30, "evaluations"
                    )
                depth.value = 20
                await await_for(lambda: replicas(sim, "kept") == 2, 60, "acted after the cut")
                await await_for(lambda: daemon.role() == "leader", 30, "leading")
                assert (await daemon.ready())[0]
    finally:
        await admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


# Only the backends of the test's own database (never another test's).
TERMINATE = (
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
    "WHERE datname = $1 AND pid <> pg_backend_pid()"
)


async def admin(statement: str, *args: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    try:
        await conn.execute(statement, *args)
    finally:
        await conn.close()
