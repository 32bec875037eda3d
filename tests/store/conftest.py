"""Fixtures for the store tests: one `Backend` per implementation (SQLite on a temp file,
PostgreSQL on a database created for this test session and dropped at its end)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from autoscaler.store import Store, open_store
from tests.services import require_tcp

PG_HOST, PG_PORT = "127.0.0.1", 5432
PG_ADMIN_DSN = f"postgresql://postgres@{PG_HOST}:{PG_PORT}/postgres"


def pg_dsn(database: str) -> str:
    return f"postgresql://postgres@{PG_HOST}:{PG_PORT}/{database}"


async def _admin(statement: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def create_database() -> str:
    name = f"autoscaler_test_{secrets.token_hex(6)}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    return name


def drop_database(name: str) -> None:
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@dataclass
class Backend:
    """Where a store lives, and how to make a fresh (unopened) store object for it."""

    name: str
    url: str

    def new_store(self, *, cluster: str = "default") -> Store:
        return open_store(self.url, cluster=cluster)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def pg_session_database() -> Iterator[str]:
    require_tcp("postgresql", PG_PORT)
    name = create_database()
    try:
        yield name
    finally:
        drop_database(name)


@pytest.fixture
def pg_fresh_database() -> Iterator[str]:
    """An empty database of its own, for tests about schema creation and migration."""
    require_tcp("postgresql", PG_PORT)
    name = create_database()
    try:
        yield name
    finally:
        drop_database(name)


async def _truncate(dsn: str) -> None:
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        exists = await conn.fetchval("SELECT to_regclass('lease') IS NOT NULL")
        if exists:
            await conn.execute("TRUNCATE policy_state, policy_spec, intents, lease")
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """Each backend with empty tables."""
    if request.param == "sqlite":
        return Backend("sqlite", f"sqlite:///{tmp_path / 'state.db'}")
    database = request.getfixturevalue("pg_session_database")
    asyncio.run(_truncate(pg_dsn(database)))
    return Backend("postgresql", pg_dsn(database))


@pytest.fixture
def pg_backend(pg_session_database: str) -> Backend:
    """PostgreSQL alone (with empty tables), for what only a server can show."""
    asyncio.run(_truncate(pg_dsn(pg_session_database)))
    return Backend("postgresql", pg_dsn(pg_session_database))


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """Each backend with no schema at all."""
    if request.param == "sqlite":
        return Backend("sqlite", f"sqlite:///{tmp_path / 'fresh.db'}")
    return Backend("postgresql", pg_dsn(request.getfixturevalue("pg_fresh_database")))


StoreFactory = Callable[..., Store]
