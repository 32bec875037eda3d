"""SQLite first opens: switching a new file to WAL waits for another connection writing it.

`PRAGMA journal_mode = WAL` fails at once with "database is locked" (no busy wait) while
another connection holds the new file's write lock; that is how three concurrent first opens
of one file failed now and then (tests/store/test_store_contract.py::
test_concurrent_first_opens_do_not_race[sqlite]). `use_wal` waits for the write lock instead.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import anyio

from autoscaler.store.sqlite import SQLiteStore, use_wal


def test_switching_to_wal_waits_for_a_writer_of_the_new_file(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    writer = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("CREATE TABLE t (x)")
    opener = sqlite3.connect(path, timeout=60, isolation_level=None)
    waiting = threading.Event()
    # The writer commits only once the opener, refused the switch, waits for the write lock.
    opener.set_trace_callback(lambda sql: sql.startswith("BEGIN IMMEDIATE") and waiting.set())

    def commit_when_the_opener_waits() -> None:
        if waiting.wait(60):
            writer.execute("COMMIT")

    thread = threading.Thread(target=commit_when_the_opener_waits)
    thread.start()
    try:
        use_wal(opener)
        assert opener.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert opener.execute("SELECT count(*) FROM t").fetchone()[0] == 0  # the writer's table
    finally:
        waiting.set()
        thread.join(60)
        opener.close()
        writer.close()


def test_many_concurrent_first_opens(tmp_path: Path) -> None:
    async def rounds() -> None:
        for i in range(20):
            stores = [SQLiteStore(str(tmp_path / f"s{i}.db")) for _ in range(4)]
            async with anyio.create_task_group() as tg:
                for store in stores:
                    tg.start_soon(store.open)
            for store in stores:
                await store.close()

    anyio.run(rounds)
