"""Malformed list answers through the daemon against the NeevCloud simulator over HTTP: an
answer whose deployments cannot be told apart or read (no `items`, two live deployments with
one name, a name that differs only in case) is a failed lookup, never "absent" or "the first
one": no create, scale or delete goes out while it lasts (`providers/answers.py`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.runtime.daemon_support import Mutate, Mutation, SimServer, await_for
from tests.runtime.test_runtime_delete_safety import evaluations, never_down
from tests.runtime.test_runtime_loop_faults import Depth, replicas, running
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


def writes(sim: SimServer) -> list[tuple[str, str]]:
    return [
        (r["method"], r["path"])
        for r in sim.app.state.sim.requests
        if r["method"] in ("POST", "PUT", "PATCH", "DELETE") and "/aimodels" in r["path"]
    ]


@pytest.mark.parametrize("mutation", [no_items, twin, upper_case])
async def test_a_malformed_list_answer_moves_nothing(tmp_path: Path, mutation: Mutation) -> None:
    """A policy that never scales down, at 5 replicas for a queue that asks for 3: while the
    list answers are malformed, evaluations go on and no write request is sent."""
    depth = Depth(50)
    sim = SimServer(provision_seconds=0.2)
    mutate = Mutate(sim.app)
    sim.server.config.app = mutate  # uvicorn loads its app when it starts serving
    sim.start()
    try:
        with serving() as src:
            src.routes["/depth"] = depth.reply
            sim.create("listed")
            async with running(tmp_path, sim, never_down("listed", src.url("/depth"))) as daemon:
                await await_for(lambda: replicas(sim, "listed") == 5, 30, "scaled to 5")
                depth.value = 30  # asks for 3: held at 5, scale-down is disabled
                before = writes(sim)
                mutate.mutation = mutation
                await evaluations(daemon, "listed", 5)
                mutate.mutation = None
                assert writes(sim) == before
                assert [d["replicas"] for d in sim.current("listed")] == [5]
    finally:
        sim.stop()
