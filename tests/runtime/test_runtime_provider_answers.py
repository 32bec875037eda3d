"""Malformed list answers through the daemon against the NeevCloud simulator over HTTP: an
answer whose deployments cannot be told apart or read (no `items`, two live deployments with
one name, a name that differs only in case) is a failed lookup, never "absent" or "the first
one": no create, scale or delete goes out while it lasts (`providers/answers.py`). A broken
item of the list that names another deployment does not stop the policy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.runtime.daemon_support import Mutate, Mutation, SimServer, await_for
from tests.runtime.test_runtime_delete_safety import evaluations, held_at_five
from tests.runtime.test_runtime_loop_faults import Depth, http_policy, replicas, running
from tests.sources.httpserver import serving

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def no_items(answer: dict[str, Any]) -> None:
    """An error body sent with 200: read as "nothing listed", the deployment was absent."""
    answer.clear()
    answer["error"] = "internal error"


def twin(answer: dict[str, Any]) -> None:
    """A second live deployment with the same name listed first, at 1 replica: the daemon
    took the first one and scaled an id that is not the deployment."""
    answer["items"][:0] = [{**item, "id": "twin-id", "replicas": 1} for item in answer["items"]]


def upper_case(answer: dict[str, Any]) -> None:
    """The name comes back in another case: read as absent, a create went out."""
    for item in answer["items"]:
        item["name"] = item["name"].upper()


def broken_twin(answer: dict[str, Any]) -> None:
    """An item with the deployment's own name whose id is a path: it may be ours."""
    answer["items"][:0] = [{**item, "id": "../x"} for item in answer["items"]]


def nameless(answer: dict[str, Any]) -> None:
    """An item without a name: it may be ours."""
    answer["items"].append({"id": "d-1", "status": "ready", "replicas": 2})


def writes(sim: SimServer) -> list[tuple[str, str]]:
    return [
        (r["method"], r["path"])
        for r in sim.app.state.sim.requests
        if r["method"] in ("POST", "PUT", "PATCH", "DELETE") and "/aimodels" in r["path"]
    ]


@pytest.mark.parametrize("mutation", [no_items, twin, upper_case, broken_twin, nameless])
async def test_a_malformed_list_answer_moves_nothing(tmp_path: Path, mutation: Mutation) -> None:
    """A policy that never scales down, at 5 replicas for a queue that asks for 3: while the
    list answers are malformed, evaluations go on and no write request is sent."""
    async with held_at_five(tmp_path, "listed", Mutate) as (daemon, sim, mutate):
        before = writes(sim)
        mutate.mutation = mutation
        await evaluations(daemon, "listed", 5)
        mutate.mutation = None
        assert writes(sim) == before
        assert [d["replicas"] for d in sim.current("listed")] == [5]


def someone_elses_broken(answer: dict[str, Any]) -> None:
    """Another deployment of the account, without an id."""
    answer["items"].append({"name": "someone-else", "status": "ready", "replicas": 2})


async def test_someone_elses_broken_deployment_does_not_stall_the_policy(tmp_path: Path) -> None:
    """Every list answer carries a broken deployment of another name: the policy still
    scales (before, every lookup on the provider failed while it was listed)."""
    depth = Depth(50)  # asks for 5
    sim = SimServer(provision_seconds=0.2)
    middleware = Mutate(sim.app)
    middleware.mutation = someone_elses_broken
    sim.server.config.app = middleware  # uvicorn loads its app when it starts serving
    sim.start()
    try:
        with serving() as src:
            src.routes["/depth"] = depth.reply
            sim.create("busy")
            async with running(tmp_path, sim, http_policy("busy", src.url("/depth"))):
                await await_for(lambda: replicas(sim, "busy") == 5, 30, "scaled to 5")
        assert [d["name"] for d in sim.app.state.sim.snapshot()["deployments"]] == ["busy"]
    finally:
        sim.stop()
