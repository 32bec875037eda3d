"""Surprising data around a delete to zero, through the daemon against the NeevCloud
simulator over HTTP: what a previous run left in the state store must never delete a
deployment the daemon did not decide to delete.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from autoscaler.runtime.daemon import Daemon
from autoscaler.store.sqlite import SQLiteStore
from tests.runtime.daemon_support import CREATE_SPEC, Mutate, SimServer, await_for, sim_server
from tests.runtime.test_runtime_loop_faults import (
    Depth,
    http_policy,
    replicas,
    running,
    scale_targets,
)
from tests.sources.httpserver import serving

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def pending_delete(db: Path, policy: str, deployment_id: str) -> None:
    """What a daemon killed between its delete call and the record of it leaves behind."""
    store = SQLiteStore(str(db))
    await store.open()
    try:
        payload = {
            "name": policy,
            "provider": "sim",
            "deployment_id": deployment_id,
            "spec": CREATE_SPEC,
            "replicas": 1,
        }
        await store.begin_intent(policy, "delete", payload)
    finally:
        await store.close()


async def evaluations(daemon: Daemon, name: str, more: int) -> None:
    runner = daemon.runners[name]
    start = runner.status_info.evaluations
    await await_for(lambda: runner.status_info.evaluations >= start + more, 30, "evaluations")


async def start_after_pending_delete(
    tmp: Path, name: str, *, same_id: bool, extra: str = ""
) -> None:
    """A busy deployment, a delete intent left pending for it (or for an older deployment of
    that name), and the daemon started on that store: the deployment must stay untouched."""
    with sim_server(provision_seconds=0.2) as sim, serving() as src:
        src.routes["/depth"] = Depth(30).reply
        live = sim.create(name)
        await await_for(lambda: sim.current(name), 10, "deployment")
        await pending_delete(tmp / "state.db", name, live["id"] if same_id else "older-id")
        policy = http_policy(name, src.url("/depth"), extra=extra, min_replicas=0 if extra else 1)
        async with running(tmp, sim, policy) as daemon:
            await evaluations(daemon, name, 5)
            assert [d["id"] for d in sim.current(name)] == [live["id"]]
            assert not [r for r in sim.app.state.sim.requests if r["method"] == "DELETE"]


async def test_a_pending_delete_never_deletes_a_deployment_with_another_id(
    tmp_path: Path,
) -> None:
    """The delete of deployment A went out and the daemon died before recording it; by the
    restart an operator had deployed the name again (deployment B, in use). Reconciling the
    intent must see that A is gone, not delete B because it has A's name."""
    await start_after_pending_delete(tmp_path, "busy", same_id=False)


async def test_a_delete_left_pending_is_not_sent_to_a_deployment_busy_again(
    tmp_path: Path,
) -> None:
    """The daemon decided the idle deployment's delete, committed the intent and died before
    sending it; when it starts again the queue is full. The stale decision must not be sent:
    the loop decides again from fresh metrics (as for a stale scale)."""
    zero = "scale_to_zero: {after: 1s, activation: [{metric: queue, threshold: 0}]}\n"
    await start_after_pending_delete(tmp_path, "woken", same_id=True, extra=zero)


class Rewrite(Mutate):
    """While `active`, every deployment in a list answer reports `replicas` as its replica
    count (null, a string, a negative)."""

    def __init__(self, app: Any) -> None:
        super().__init__(app)
        self.replicas: Any = None

    @property
    def active(self) -> bool:
        return self.mutation is not None

    @active.setter
    def active(self, on: bool) -> None:
        self.mutation = self._rewrite if on else None

    def _rewrite(self, answer: dict[str, Any]) -> None:
        for item in answer["items"]:
            item["replicas"] = self.replicas


def never_down(name: str, url: str) -> str:
    """`http_policy` with scale-down switched off: no count a queue asks for lowers it."""
    text = http_policy(name, url)
    down = text[text.index("  scale_down:") : text.index("\non_metric_failure")]
    return text.replace(down, "  scale_down: {select: disabled}")


M = TypeVar("M", bound=Mutate)


@contextlib.asynccontextmanager
async def held_at_five(
    tmp_path: Path, name: str, mutate: type[M]
) -> AsyncIterator[tuple[Daemon, SimServer, M]]:
    """A policy that never scales down, at 5 replicas for a queue that now asks for 3, its
    simulator's answers going through `mutate` (switched on by the test): (daemon, simulator,
    the mutating middleware)."""
    depth = Depth(50)
    sim = SimServer(provision_seconds=0.2)
    middleware = mutate(sim.app)
    sim.server.config.app = middleware  # uvicorn loads its app when it starts serving
    sim.start()
    try:
        with serving() as src:
            src.routes["/depth"] = depth.reply
            sim.create(name)
            async with running(tmp_path, sim, never_down(name, src.url("/depth"))) as daemon:
                await await_for(lambda: replicas(sim, name) == 5, 30, "scaled to 5")
                depth.value = 30  # asks for 3: held at 5, scale-down is disabled
                yield daemon, sim, middleware
    finally:
        sim.stop()


@pytest.mark.parametrize("garbage", [None, "5", -1, 0, 2.5])
async def test_an_unreadable_replica_count_never_moves_the_deployment(
    tmp_path: Path, garbage: Any
) -> None:
    """A policy that never scales down, at 5 replicas for a queue that asks for 3. A list
    answer whose replica count is garbage was read as 1 replica, and "1 -> 3" went out as a
    scale-up: the deployment lost 2 replicas. An unreadable count is no observation."""
    async with held_at_five(tmp_path, "counted", Rewrite) as (daemon, sim, rewrite):
        rewrite.replicas, rewrite.active = garbage, True
        await evaluations(daemon, "counted", 5)
        rewrite.active = False
        assert replicas(sim, "counted") == 5
    assert scale_targets(sim) == [5], scale_targets(sim)


@pytest.mark.parametrize(
    ("table", "torn"),
    [
        # The spec captured at the delete: never read as a spec, but the policy's own
        # `deployment.create` can still bring the deployment back (spec_unreadable); a create
        # that failed on the row every pass left it at zero for good.
        ("policy_spec", '{"create": {"catal'),
        # The state: it holds only what tunes the next decisions (windows, clocks), so the
        # policy starts from a fresh one and runs; every pass failed on the row before.
        ("policy_state", '{"core": {"up_hist'),
    ],
)
async def test_a_truncated_row_does_not_keep_a_deployment_from_coming_back(
    tmp_path: Path, table: str, torn: str
) -> None:
    """A row of the store was cut short (a torn write, a bad restore): logged and read as
    missing, the policy still creates and scales its deployment."""
    db = tmp_path / "state.db"
    store = SQLiteStore(str(db))
    await store.open()
    await store.close()
    with sqlite3.connect(db) as conn:
        conn.execute(f"INSERT INTO {table} VALUES ('torn', ?, 0)", (torn,))
    with sim_server(provision_seconds=0.2) as sim, serving() as src:
        src.routes["/depth"] = Depth(30).reply
        async with running(tmp_path, sim, http_policy("torn", src.url("/depth"))):
            await await_for(lambda: replicas(sim, "torn") == 3, 30, "created and scaled")
        assert [d["spec"]["catalog_id"] for d in sim.current("torn")] == [CREATE_SPEC["catalog_id"]]
