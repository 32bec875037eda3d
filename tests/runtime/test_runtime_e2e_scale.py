"""End to end: the daemon (in this process) against the NeevCloud simulator over real HTTP
and a real Redis list: load arrives at zero -> create; load rises -> scale up; load ends ->
scale down and, after `scale_to_zero.after`, delete; work arrives -> recreate with the same
name and spec.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import anyio
import pytest
import redis

from autoscaler.policy.loader import load_daemon
from autoscaler.runtime.daemon import Daemon
from autoscaler.runtime.metrics import Metrics
from autoscaler.store.sqlite import SQLiteStore
from tests.runtime.daemon_support import (
    CREATE_SPEC,
    await_for,
    policy_yaml,
    sim_server,
    write_config,
)
from tests.services import require_tcp

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _redis() -> redis.Redis:
    require_tcp("Redis", 6379)
    return redis.Redis.from_url("redis://127.0.0.1:6379/0")


def _daemon(folder: Path, sim_url: str, key: str, metrics: Metrics) -> Daemon:
    """A daemon (not started) with one scale-to-zero policy `chat-e2e` on Redis list `key`."""
    config_path = write_config(folder, sim_url, {"chat": policy_yaml("chat-e2e", redis_key=key)})
    config, policies = load_daemon(config_path)
    return Daemon(config, policies, config_path=str(config_path), recorder=metrics)


@pytest.mark.slow
async def test_zero_up_down_zero_and_back(tmp_path: Path) -> None:
    r = _redis()
    key = f"test:e2e:{uuid.uuid4().hex}"
    with sim_server(provision_seconds=0.5) as sim:
        metrics = Metrics()
        daemon = _daemon(tmp_path, sim.url, key, metrics)

        def dep() -> list[dict[str, Any]]:
            return sim.current("chat-e2e")

        def replicas() -> int:
            found = dep()
            return int(found[0]["replicas"]) if found else 0

        async with anyio.create_task_group() as tg:
            await tg.start(daemon.run)
            try:
                # Idle at zero: nothing is created.
                await await_for(
                    lambda: daemon.runners["chat-e2e"].status_info.evaluations >= 3, 20, "evals"
                )
                assert dep() == []

                # Work arrives at zero -> created with the policy's spec, then scaled to load.
                r.rpush(key, *range(12))
                created = await await_for(dep, 20, "created from zero")
                assert created[0]["spec"] == {**CREATE_SPEC}
                first_id = created[0]["id"]
                await await_for(lambda: replicas() == 3, 30, "scaled to ceil(12/5)=3")

                # Load rises -> up to max (4), done by the first evaluation that saw the load
                # on a ready deployment (how many evaluations that takes depends on timing:
                # the history says which one acted).
                pushed_at = time.time()
                r.rpush(key, *range(30))
                await await_for(lambda: replicas() == 4, 30, "scaled up to max 4")
                parts = daemon.connections
                history_buffer, history_store = parts.history, parts.store
                assert history_buffer is not None and history_store is not None

                async def decisions_at_load() -> list[Any]:
                    # The record follows the provider's answer: the scale can be seen at the
                    # provider before its decision is in the history.
                    await history_buffer.flush()
                    history = await history_store.decision_history("chat-e2e", since=pushed_at - 1)
                    return [
                        e
                        for e in history
                        if e.observation["status"] == "ready"
                        and (e.observation["metrics"].get("backlog") or 0) >= 30
                    ]

                saw = await await_for(decisions_at_load, 30, "the scale to 4 in the history")
                assert saw[0].decision["action"] == "scale", saw
                assert saw[0].decision["replicas"] == 4, saw[0]

                # Load ends -> down to 1, then deleted after the idle period.
                r.delete(key)
                await await_for(lambda: dep() == [], 40, "deleted after idle")
                store = daemon.connections.store
                assert isinstance(store, SQLiteStore)
                saved = await store.load_spec("chat-e2e")
                assert saved is not None and saved["create"] == CREATE_SPEC
                assert saved["name"] == "chat-e2e"

                # Work arrives again -> recreated, same name, same spec, new id.
                r.rpush(key, *range(3))
                again = await await_for(dep, 20, "recreated")
                assert again[0]["id"] != first_id
                assert again[0]["spec"] == created[0]["spec"]
                await await_for(
                    lambda: (
                        daemon.runners["chat-e2e"].created_at is None
                        and (daemon.runners["chat-e2e"].status_info.last_observation or {}).get(
                            "status"
                        )
                        == "ready"
                    ),
                    30,
                    "ready again",
                )
                assert await store.pending_intents() == []
                snap = sim.snapshot()
                assert snap["names_held_twice"] == [] and snap["name_collisions"] == 0
                status = daemon.status()["policies"]["chat-e2e"]
                assert status["last_decision"]["reasons"]
                exposition = _exposition(metrics)
                assert 'autoscaler_scale_from_zero_seconds_count{policy="chat-e2e"}' in exposition
            finally:
                daemon.request_stop()
                r.delete(key)


@pytest.mark.slow
async def test_a_create_from_zero_is_in_transition_until_it_returns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the create from zero is in flight, the runner says so: `created_at` is set and the
    transition is `creating`. Before, both were set only when the create returned, so the
    observation made before it (the delete's `ready`) looked current, and
    test_zero_up_down_zero_and_back's "ready again" could pass with the create intent still
    pending (seen under load; here made certain by holding the intent's resolve)."""
    from autoscaler.runtime import actions

    seen: list[tuple[float | None, str | None]] = []
    resolve = actions.ActionContext.resolve

    async def held_resolve(self: actions.ActionContext, intent: Any, outcome: Any) -> None:
        if intent.kind == "create":
            runner = daemon.runners["chat-e2e"]
            seen.append((runner.created_at, runner.status_info.transition))
        await resolve(self, intent, outcome)

    monkeypatch.setattr(actions.ActionContext, "resolve", held_resolve)
    r = _redis()
    key = f"test:e2e:{uuid.uuid4().hex}"
    with sim_server(provision_seconds=0.5) as sim:
        daemon = _daemon(tmp_path, sim.url, key, Metrics())
        async with anyio.create_task_group() as tg:
            await tg.start(daemon.run)
            try:
                r.rpush(key, *range(3))
                await await_for(lambda: seen, 30, "a create from zero")
                created_at, transition = seen[0]
                assert created_at is not None and transition == "creating"
            finally:
                daemon.request_stop()
                r.delete(key)


def _exposition(metrics: Metrics) -> str:
    from prometheus_client import generate_latest

    return generate_latest(metrics.registry).decode()
