"""A delete to zero is not sent while the spec captured for the deployment could not create it
again (`actions.recreatable`), through the daemon against the NeevCloud simulator over HTTP.

The policy's `deployment.create` leaves `gpu_count` to the provider (it is optional), so the
captured spec takes it from the provider's answer (`NeevCloudProvider.spec_from_response`).
While the list answers report it as garbage (`"2"`, a string), an idle deployment must stay,
and the operator must see why (/status, the decision history, the metrics: every refusal; the
log: once, then as a reminder `repeats.REMIND` later); once the answers are sane again it is
deleted (one `action_recovered` line), and activity creates it again from a valid spec.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from structlog.testing import capture_logs

from autoscaler.runtime.daemon import Daemon
from autoscaler.runtime.http import create_http_app
from autoscaler.runtime.repeats import REMIND
from tests.runtime.daemon_support import CREATE_SPEC, Mutate, SimServer, await_for
from tests.runtime.test_runtime_delete_safety import evaluations
from tests.runtime.test_runtime_loop_faults import Depth, http_policy, running
from tests.sources.httpserver import serving

pytestmark = pytest.mark.anyio

NAME = "spec-check"
# Everything but gpu_count: that one the captured spec takes from the provider.
POLICY_SPEC = {k: v for k, v in CREATE_SPEC.items() if k != "gpu_count"}
ZERO = "scale_to_zero: {after: 1s, activation: [{metric: queue, threshold: 0}]}\n"
WHY = "gpu_count must be an integer >= 1"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def garbage_gpu_count(answer: dict[str, Any]) -> None:
    """A `Mutate` mutation: every deployment in a list answer reports `gpu_count: "2"`."""
    for item in answer["items"]:
        item["gpu_count"] = "2"


def policy(url: str) -> str:
    text = http_policy(NAME, url, extra=ZERO, min_replicas=0)
    return text.replace(json.dumps(CREATE_SPEC), json.dumps(POLICY_SPEC))


def deletes(sim: SimServer) -> list[dict[str, Any]]:
    return [r for r in sim.app.state.sim.requests if r["method"] == "DELETE"]


@asynccontextmanager
async def operator_view(daemon: Daemon) -> AsyncIterator[httpx.AsyncClient]:
    """The daemon's own HTTP app (/status, /policies/{name}/history, /metrics)."""
    app = create_http_app(daemon, daemon.recorder.registry, None)  # type: ignore[attr-defined]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://daemon") as client:
        yield client


async def delete_decided(client: httpx.AsyncClient, sim: SimServer) -> bool:
    """Refused (recorded with its error) or sent."""
    entry = (await client.get("/status")).json()["policies"][NAME]["last_decision"] or {}
    return bool((entry.get("action") == "delete" and "error" in entry) or deletes(sim))


async def failed_deletes(client: httpx.AsyncClient) -> float:
    families = text_string_to_metric_families((await client.get("/metrics")).text)
    return sum(
        s.value
        for f in families
        if f.name == "autoscaler_decision_outcomes"
        for s in f.samples
        if s.name.endswith("_total")
        and s.labels == {"policy": NAME, "action": "delete", "outcome": "failed"}
    )


async def assert_operator_sees_why(
    client: httpx.AsyncClient, logs: Sequence[Mapping[str, Any]]
) -> None:
    status = (await client.get("/status")).json()["policies"][NAME]
    assert WHY in status["last_error"] and "not deleting" in status["last_error"], status
    decision = status["last_decision"]
    assert decision["action"] == "delete" and decision["executed"] is False, decision
    assert WHY in decision["error"], decision
    history = (await client.get(f"/policies/{NAME}/history")).json()["entries"]
    tried = [e["decision"] for e in history if e["decision"]["action"] == "delete"]
    assert len(tried) >= 5, history
    assert all(not d["executed"] and WHY in d["error"] for d in tried), tried
    assert await failed_deletes(client) >= len(tried)
    # Every refusal is in the metrics and the history; the log says it once.
    [failed] = logged(logs, "action_failed")
    assert failed["log_level"] == "error" and failed["repeats"] == 0, failed
    assert failed["action"] == "delete" and WHY in failed["error"], failed
    deleting = [e for e in logged(logs, "decision") if e["action"] == "delete"]
    assert [e["log_level"] for e in deleting][:2] == ["warning", "debug"], deleting
    assert len(deleting) >= 5 and len([e for e in deleting if e["log_level"] != "debug"]) == 1


def logged(logs: Sequence[Mapping[str, Any]], event: str) -> list[Mapping[str, Any]]:
    return [e for e in logs if e["event"] == event and e["policy"] == NAME]


class Shifted:
    """The daemon's clock (the core's `now`): the wall clock, `ahead` seconds on."""

    def __init__(self) -> None:
        self.ahead = 0.0

    def __call__(self) -> float:
        return time.time() + self.ahead


async def assert_reminded(clock: Shifted, logs: Sequence[Mapping[str, Any]]) -> None:
    """`REMIND` later, the refusal still repeating is said again, with the repeats unsaid."""
    clock.ahead += REMIND
    await await_for(lambda: len(logged(logs, "action_failed")) == 2, 30, "a reminder")
    first, again = logged(logs, "action_failed")
    assert again["error"] == first["error"] and again["repeats"] >= 4, again


async def test_garbage_the_provider_reports_keeps_an_idle_deployment(tmp_path: Path) -> None:
    depth = Depth(0)  # idle from the start: a delete is due `after` 1s
    sim = SimServer(provision_seconds=0.2)
    garbage = Mutate(sim.app)
    sim.server.config.app = garbage  # uvicorn loads its app when it starts serving
    sim.start()
    try:
        with serving() as src, capture_logs() as logs:
            src.routes["/depth"] = depth.reply
            live = sim.create(NAME)
            garbage.mutation = garbage_gpu_count
            clock = Shifted()
            async with running(tmp_path, sim, policy(src.url("/depth")), clock=clock) as daemon:
                async with operator_view(daemon) as client:
                    await await_for(lambda: delete_decided(client, sim), 30, "a delete")
                    await evaluations(daemon, NAME, 5)
                    assert not deletes(sim), deletes(sim)
                    assert [d["id"] for d in sim.current(NAME)] == [live["id"]]
                    await assert_operator_sees_why(client, logs)
                    await assert_reminded(clock, logs)
                garbage.mutation = None  # sane answers: the next idle evaluation deletes
                await await_for(lambda: not sim.current(NAME), 30, "deleted to zero")
                assert [r["path"].rsplit("/", 1)[-1] for r in deletes(sim)] == [live["id"]]
                [recovered] = logged(logs, "action_recovered")
                assert recovered["action"] == "delete" and recovered["failures"] >= 6, recovered
                depth.value = 30  # activity: created again
                [again] = await await_for(lambda: sim.current(NAME), 30, "created again")
        assert again["id"] != live["id"] and again["name"] == NAME
        *_, create = [r for r in sim.app.state.sim.requests if r["method"] == "POST"]
        assert create["status"] == 201 and create["body"] == {"name": NAME, **CREATE_SPEC}, create
    finally:
        sim.stop()
