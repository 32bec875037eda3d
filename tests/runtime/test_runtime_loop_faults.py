"""The loop under trouble, in this process against real servers: provider faults (the
simulator answering 500 to everything), a metric source outage (an http_json endpoint
answering 503), dry run, and the admin pause / override. The daemon keeps running, never
scales down on missing metrics, converges once the faults stop, and never writes in dry run.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

from autoscaler.policy.loader import load_daemon
from autoscaler.runtime.daemon import Daemon
from autoscaler.runtime.metrics import Metrics
from autoscaler.store.sqlite import SQLiteStore
from tests.runtime.daemon_support import CREATE_SPEC, SimServer, await_for, sim_server, write_config
from tests.sources.httpserver import Reply, serving

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def http_policy(name: str, url: str, *, extra: str = "", min_replicas: int = 1) -> str:
    spec = json.dumps(CREATE_SPEC)
    return f"""name: {name}
deployment:
  provider: sim
  name: {name}
  create: {spec}
replicas: {{min: {min_replicas}, max: 6}}
interval: 0.2s
metrics:
  - name: queue
    source: {{type: http_json, url: "{url}", path: depth, timeout: 1s}}
    target: {{type: average_value, value: 10}}
behavior:
  scale_up: {{stabilization_window: 0s, policies: [{{type: replicas, value: 6, period: 1s}}]}}
  scale_down: {{stabilization_window: 0s, policies: [{{type: percent, value: 100, period: 1s}}]}}
on_metric_failure: {{after: 2, action: hold}}
{extra}"""


class Depth:
    """What the http_json endpoint answers: a depth, or an outage (503)."""

    def __init__(self, value: float) -> None:
        self.value = value
        self.down = False

    def reply(self, _seen: Any) -> Reply:
        if self.down:
            return Reply("unavailable", status=503)
        return Reply(json.dumps({"depth": self.value}), content_type="application/json")


@asynccontextmanager
async def running(
    tmp: Path,
    sim: SimServer,
    policy: str | dict[str, str],  # one policy's text, or name -> text
    extra: str = "",
    clock: Callable[[], float] | None = None,  # the daemon's (default: the wall clock)
    state: str | None = None,  # the state.url (default: state.db in `tmp`)
) -> AsyncIterator[Daemon]:
    texts = {"p": policy} if isinstance(policy, str) else policy
    config_path = write_config(tmp, sim.url, texts, extra=extra, state=state)
    config, policies = load_daemon(config_path)
    daemon = Daemon(config, policies, config_path=str(config_path), recorder=Metrics(), clock=clock)
    async with anyio.create_task_group() as tg:
        await tg.start(daemon.run)
        try:
            yield daemon
        finally:
            daemon.request_stop()


def replicas(sim: SimServer, name: str) -> int:
    found = sim.current(name)
    return int(found[0]["replicas"]) if found else 0


def scale_targets(sim: SimServer) -> list[int]:
    return [
        int(r["body"]["replicas"])
        for r in sim.app.state.sim.requests
        if r["method"] == "PUT" and r["status"] == 200
    ]


def evaluations(daemon: Daemon, name: str) -> int:
    return daemon.runners[name].status_info.evaluations


@pytest.mark.slow
async def test_provider_faults_then_convergence(tmp_path: Path) -> None:
    depth = Depth(40)
    with sim_server(provision_seconds=0.2) as sim, serving() as src:
        src.routes["/depth"] = depth.reply
        sim.create("faulty")
        await await_for(lambda: replicas(sim, "faulty") == 1, 10, "pre-created ready")
        sim.faults(error_rate=1.0, error_status=503)
        async with running(tmp_path, sim, http_policy("faulty", src.url("/depth"))) as daemon:
            start = evaluations(daemon, "faulty")
            await await_for(lambda: evaluations(daemon, "faulty") >= start + 5, 30, "evals")
            status = daemon.status()["policies"]["faulty"]
            assert status["last_error"], status
            assert replicas(sim, "faulty") == 1  # nothing could be done, nothing crashed
            sim.faults(error_rate=0.0)
            await await_for(lambda: replicas(sim, "faulty") == 4, 30, "scaled once faults end")
        assert len(sim.current("faulty")) == 1


@pytest.mark.slow
async def test_source_outage_never_scales_down(tmp_path: Path) -> None:
    depth = Depth(50)
    with sim_server(provision_seconds=0.2) as sim, serving() as src:
        src.routes["/depth"] = depth.reply
        sim.create("metered")
        async with running(tmp_path, sim, http_policy("metered", src.url("/depth"))) as daemon:
            await await_for(lambda: replicas(sim, "metered") == 5, 30, "scaled to 5")
            writes_before = len(scale_targets(sim))
            depth.down = True  # the metric endpoint fails from now on
            start = evaluations(daemon, "metered")
            await await_for(lambda: evaluations(daemon, "metered") >= start + 8, 30, "evals")
            assert scale_targets(sim)[writes_before:] == [], "no scale while metrics are missing"
            obs = daemon.status()["policies"]["metered"]["last_observation"]
            assert obs["metrics"]["queue"] is None
            depth.value, depth.down = 5, False  # back, and the load has gone
            await await_for(lambda: replicas(sim, "metered") == 1, 30, "scaled down after")


async def test_dry_run_never_writes(tmp_path: Path) -> None:
    depth = Depth(60)
    with sim_server(provision_seconds=0.2) as sim, serving() as src:
        src.routes["/depth"] = depth.reply
        sim.create("dry")
        policy = http_policy("dry", src.url("/depth"))
        async with running(tmp_path, sim, policy, extra="dry_run: true\n") as daemon:
            decided = await await_for(
                lambda: (
                    (d := daemon.status()["policies"]["dry"]["last_decision"])
                    and d["action"] == "scale"
                    and d
                ),
                30,
                "a scale decision",
            )
            assert decided["executed"] is False and decided["not_executed"] == "dry_run"
            assert daemon.status()["policies"]["dry"]["dry_run"] is True
        assert [r for r in sim.app.state.sim.requests if r["method"] != "POST"] == []
        assert replicas(sim, "dry") == 1


async def test_pause_and_override(tmp_path: Path) -> None:
    depth = Depth(0)
    with sim_server(provision_seconds=0.2) as sim, serving() as src:
        src.routes["/depth"] = depth.reply
        sim.create("admin")
        async with running(tmp_path, sim, http_policy("admin", src.url("/depth"))) as daemon:
            await daemon.pause("admin")
            depth.value = 60
            start = evaluations(daemon, "admin")
            await await_for(lambda: evaluations(daemon, "admin") >= start + 3, 30, "evals")
            status = daemon.status()["policies"]["admin"]
            assert status["paused"] is True
            assert "paused" in status["last_decision"]["reasons"]
            assert replicas(sim, "admin") == 1
            await daemon.resume("admin")
            await await_for(lambda: replicas(sim, "admin") == 6, 30, "scaled after resume")
            depth.value = 0
            await daemon.override("admin", 3, 300)
            await await_for(lambda: replicas(sim, "admin") == 3, 30, "held by override")
            with pytest.raises(ValueError):
                await daemon.override("admin", 99, 10)
    # The admin state is durable: the override is in the store for the next start.
    store = SQLiteStore(str(tmp_path / "state.db"))
    await store.open()
    try:
        stored = await store.load_state("admin")
    finally:
        await store.close()
    assert stored is not None and stored["core"]["override"][0] == 3
    assert stored["core"]["paused"] is False
