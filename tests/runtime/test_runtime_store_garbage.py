"""The daemon over a state store holding rows it cannot use (a bad restore, a hand edit, a torn
write, a newer autoscaler): in this process, against the NeevCloud simulator over HTTP and a
real SQLite file written past the store's checks. It starts, says once per row what is wrong
and for which policy, keeps every other policy going, and never acts on garbage."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

from autoscaler.policy.loader import load_daemon
from autoscaler.runtime.daemon import Daemon
from autoscaler.runtime.metrics import Metrics
from autoscaler.store.sqlite import SQLiteStore
from tests.runtime.daemon_support import SimServer, await_for, sim_server, write_config
from tests.runtime.test_runtime_loop_faults import Depth, evaluations, http_policy, replicas
from tests.sources.httpserver import serving

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def make_store(tmp: Path) -> Path:
    """The daemon's state file, with its schema, before the daemon first opens it."""
    path = tmp / "state.db"
    store = SQLiteStore(str(path))
    await store.open()
    await store.close()
    return path


def raw(path: Path, *statements: tuple[str, tuple[Any, ...]]) -> None:
    """Rows written past the store's checks (the kind's CHECK constraint included)."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA ignore_check_constraints = ON")
        for sql, args in statements:
            conn.execute(sql, args)
        conn.commit()
    finally:
        conn.close()


def intent_row(policy: str, kind: str, payload: str) -> tuple[str, tuple[Any, ...]]:
    return (
        "INSERT INTO intents (policy, kind, payload, created_at) VALUES (?, ?, ?, 1.0)",
        (policy, kind, payload),
    )


def outcomes(path: Path) -> dict[str, list[dict[str, Any] | None]]:
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT policy, outcome FROM intents ORDER BY id").fetchall()
    finally:
        conn.close()
    out: dict[str, list[dict[str, Any] | None]] = {}
    for policy, outcome in rows:
        out.setdefault(policy, []).append(None if outcome is None else json.loads(outcome))
    return out


@asynccontextmanager
async def running(tmp: Path, sim: SimServer, policies: dict[str, str]) -> AsyncIterator[Daemon]:
    config_path = write_config(tmp, sim.url, policies)
    config, loaded = load_daemon(config_path)
    daemon = Daemon(config, loaded, config_path=str(config_path), recorder=Metrics())
    async with anyio.create_task_group() as tg:
        await tg.start(daemon.run)
        try:
            yield daemon
        finally:
            daemon.request_stop()


NAMES = ("aaa", "bbb", "ccc")


async def test_broken_intent_rows_are_resolved_without_a_call_and_block_nobody(
    tmp_path: Path,
) -> None:
    """Payloads that are not JSON, of the wrong types, an unknown kind: on the old code the
    first one read stopped the daemon's start. Now each is resolved `unreadable` without a
    provider call, the sound one is reconciled as usual, and every policy scales."""
    path = await make_store(tmp_path)
    raw(
        path,
        intent_row("aaa", "delete", "{not json"),
        intent_row("aaa", "teleport", json.dumps({"name": "aaa"})),
        intent_row("bbb", "scale", json.dumps({"name": "bbb", "replicas": "many"})),
        intent_row("bbb", "create", json.dumps({"name": "bbb", "spec": "garbage"})),
        intent_row("ccc", "scale", json.dumps({"name": "ccc", "replicas": 3})),
    )
    depth = Depth(40)
    with sim_server(provision_seconds=0.2) as sim, serving() as src:
        src.routes["/depth"] = depth.reply
        for name in NAMES:
            sim.create(name)
        await await_for(lambda: all(replicas(sim, n) == 1 for n in NAMES), 10, "created")
        policies = {n: http_policy(n, src.url("/depth")) for n in NAMES}
        async with running(tmp_path, sim, policies) as daemon:
            await await_for(
                lambda: all(replicas(sim, n) == 4 for n in NAMES), 30, "every policy scaled"
            )
            assert all(evaluations(daemon, n) >= 1 for n in NAMES)
            rows = {(r["policy"], r["kind"]): r for r in daemon.policies.reconciled}
        methods = [r["method"] for r in sim.app.state.sim.requests]
        assert "DELETE" not in methods and methods.count("POST") == 3, "only the test created"
    assert rows[("ccc", "scale")]["outcome"]["reconciled"] == "scale"
    done = outcomes(path)
    for policy, kinds in (("aaa", 2), ("bbb", 2)):
        assert len(done[policy]) >= kinds
        for outcome in done[policy][:kinds]:
            assert outcome is not None and outcome["reconciled"] == "unreadable", outcome
    assert "not a JSON object" in done["aaa"][0]["error"]  # type: ignore[index]
    assert "unknown intent kind 'teleport'" in done["aaa"][1]["error"]  # type: ignore[index]
    assert "replicas is not a count: 'many'" in done["bbb"][0]["error"]  # type: ignore[index]
    assert "spec is not an object" in done["bbb"][1]["error"]  # type: ignore[index]
