"""Rows the store cannot use (a bad restore, a hand edit, a newer autoscaler), read by both
backends: a broken intent row is handed back marked `unreadable`, never an exception that
hides every other pending intent (the daemon reads them all at start)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import asyncpg
import pytest

from autoscaler.store import Store
from tests.store.conftest import Backend

pytestmark = pytest.mark.anyio


async def raw_sql(backend: Backend, *statements: str) -> None:
    """Statements run straight on the backend's database, past the store's checks."""
    if backend.name == "sqlite":
        conn = sqlite3.connect(Path(backend.url.removeprefix("sqlite:///")))
        try:
            conn.execute("PRAGMA ignore_check_constraints = ON")
            for statement in statements:
                conn.execute(statement)
            conn.commit()
        finally:
            conn.close()
        return
    pg = await asyncpg.connect(backend.url, timeout=5)
    try:
        await pg.execute("ALTER TABLE intents DROP CONSTRAINT IF EXISTS intents_kind_check")
        for statement in statements:
            await pg.execute(statement)
    finally:
        await pg.close()


async def test_a_broken_intent_row_does_not_hide_the_others(fresh_backend: Backend) -> None:
    store: Store = fresh_backend.new_store()
    await store.open()
    try:
        sound = await store.begin_intent("p", "scale", {"name": "d", "replicas": 2})
        # Not JSON is possible only in SQLite's text column; a jsonb value that is not an
        # object (a list, a string) in both.
        bad_payload = "'[1, 2]'" if fresh_backend.name == "postgresql" else "'{not json'"
        await raw_sql(
            fresh_backend,
            f"INSERT INTO intents (policy, kind, payload, created_at) VALUES "
            f"('p', 'delete', {bad_payload}, {now_sql(fresh_backend)})",
            "INSERT INTO intents (policy, kind, payload, created_at) VALUES "
            f"('q', 'teleport', '{{\"name\": \"d\"}}', {now_sql(fresh_backend)})",
            "INSERT INTO intents (policy, kind, payload, created_at) VALUES "
            f"('q', 'create', '\"a string\"', {now_sql(fresh_backend)})",
        )
        pending = await store.pending_intents()
        assert [(i.policy, i.kind) for i in pending] == [
            ("p", "scale"),
            ("p", "delete"),
            ("q", "teleport"),
            ("q", "create"),
        ]
        assert pending[0] == sound and pending[0].unreadable == ""
        assert "payload is not a JSON object" in pending[1].unreadable
        assert pending[1].payload == {}
        assert pending[2].unreadable == "unknown intent kind 'teleport'"
        assert pending[2].payload == {}
        assert "expected an object" in pending[3].unreadable
        # A broken row can still be resolved, like any other.
        await store.resolve_intent(pending[1].id, {"ok": False, "reconciled": "unreadable"})
        assert [i.id for i in await store.pending_intents("p")] == [sound.id]
    finally:
        await store.close()


def now_sql(backend: Backend) -> str:
    return "clock_timestamp()" if backend.name == "postgresql" else "1700000000.0"


async def test_json_nested_too_deeply_is_a_value_error(tmp_path: Path) -> None:
    """A state row of 100,000 nested lists (text SQLite may hold; PostgreSQL's jsonb refuses
    such depth itself): the reader's recursion limit is a ValueError naming the trouble, as
    for any other unreadable row, not a RecursionError."""
    backend = Backend("sqlite", f"sqlite:///{tmp_path / 'state.db'}")
    store: Store = backend.new_store()
    await store.open()
    try:
        await store.save_state("p", {"core": {}})
        deep = "[" * 100_000 + "]" * 100_000
        await raw_sql(backend, f"UPDATE policy_state SET state = '{{\"core\": {deep}}}'")
        with pytest.raises(ValueError, match="nested too deeply"):
            await store.load_state("p")
    finally:
        await store.close()
