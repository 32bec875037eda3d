"""Nebius-style client and simulator (seed 004) in-process: min = max = N scaling, partial
PATCH, templates, inference 404 while starting."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from autoscaler.providers.base import InvalidRequestError
from tests.providers.helpers import SPECS, TOKEN, client, in_process, run

BASE = "http://nebius.sim"
SPEC = SPECS["nebius"]
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_scaling_pins_min_and_max_to_the_count() -> None:
    app, sim, clock = in_process("nebius", provision_seconds=30)

    async def scenario() -> None:
        p = client("nebius", BASE, clock, transport=httpx.ASGITransport(app=app))
        await p.create("chat-llama", SPEC, 2)
        ready = await p.wait_ready("chat-llama", 900)
        scaled = await p.scale(ready, 4)
        assert (scaled.status, scaled.raw_status, scaled.replicas) == (
            "initializing",
            "updating",
            4,
        )
        again = await p.wait_ready("chat-llama", 900)
        assert (again.status, again.raw_status, again.replicas) == ("ready", "running", 4)
        assert dict(again.spec) == SPEC

    run(scenario())
    bodies = [r["body"] for r in sim.requests]
    assert bodies[0]["scaling"] == {"min_replicas": 2, "max_replicas": 2}
    assert bodies[1] == {"scaling": {"min_replicas": 4, "max_replicas": 4}}


def test_patch_is_partial() -> None:
    app, _sim, _clock = in_process("nebius", provision_seconds=0)

    async def scenario() -> dict[str, Any]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as h:
            made = await h.post(
                "/v0/dedicated_endpoints",
                headers=AUTH,
                json={"name": "chat", **SPEC, "scaling": {"min_replicas": 1, "max_replicas": 3}},
            )
            ep = made.json()["id"]
            patched = await h.patch(
                f"/v0/dedicated_endpoints/{ep}", headers=AUTH, json={"scaling": {"max_replicas": 5}}
            )
            assert patched.status_code == 200
            bad = await h.patch(
                f"/v0/dedicated_endpoints/{ep}", headers=AUTH, json={"scaling": {"min_replicas": 9}}
            )
            assert bad.status_code == 400 and "min_replicas" in bad.json()["detail"]
            return dict(patched.json())

    body = run(scenario())
    assert body["scaling"] == {"min_replicas": 1, "max_replicas": 5}
    assert (body["model_name"], body["gpu_count"], body["name"]) == ("gpt-oss-120b", 1, "chat")


def test_inference_answers_404_until_the_endpoint_runs() -> None:
    app, _sim, clock = in_process("nebius", provision_seconds=600)

    async def scenario() -> list[int]:
        p = client("nebius", BASE, clock, transport=httpx.ASGITransport(app=app))
        info = await p.create("chat-llama", SPEC, 1)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as h:
            routing_key = (await h.get(f"/v0/dedicated_endpoints/{info.id}", headers=AUTH)).json()[
                "routing_key"
            ]
            chat = {"model": routing_key, "messages": [{"role": "user", "content": "hi"}]}
            before = await h.post("/v1/chat/completions", headers=AUTH, json=chat)
            clock.advance(600)
            after = await h.post("/v1/chat/completions", headers=AUTH, json=chat)
            return [before.status_code, after.status_code]

    assert run(scenario()) == [404, 200]


def test_templates_gate_creation() -> None:
    app, sim, clock = in_process("nebius", provision_seconds=0)

    async def scenario() -> None:
        p = client("nebius", BASE, clock, transport=httpx.ASGITransport(app=app))
        templates = await p.templates()  # type: ignore[attr-defined]
        assert "gpt-oss-120b" in [t["model_name"] for t in templates]
        with pytest.raises(InvalidRequestError, match="no template"):
            await p.create("chat-llama", {**SPEC, "model_name": "unknown/model"}, 1)
        with pytest.raises(InvalidRequestError, match="gpu_count"):
            await p.create("chat-llama", {**SPEC, "gpu_count": 0}, 1)

    run(scenario())
    assert sim.current() == []


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"name": "x", **SPEC}, 400),  # scaling missing
        ({"name": "x", **SPEC, "scaling": {"min_replicas": 0, "max_replicas": 1}}, 400),
        ({"name": "", **SPEC, "scaling": {"min_replicas": 1, "max_replicas": 1}}, 400),
        (
            {
                "name": "x",
                **SPEC,
                "gpu_type": "tpu",
                "scaling": {"min_replicas": 1, "max_replicas": 1},
            },
            400,
        ),
    ],
)
def test_simulator_validates_create(body: dict[str, Any], status: int) -> None:
    app, _sim, _clock = in_process("nebius", provision_seconds=0)

    async def scenario() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as h:
            assert (await h.post("/v0/dedicated_endpoints", json=body)).status_code == 401
            return await h.post("/v0/dedicated_endpoints", json=body, headers=AUTH)

    assert run(scenario()).status_code == status
