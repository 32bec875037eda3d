"""NetMind client and simulator (seed 003) in-process: string/int instance counts, flavors,
find by name through the list, `available` -> ready, validation."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from autoscaler.providers.base import ConflictError, InvalidRequestError
from autoscaler.providers.netmind import parse_count
from tests.providers.helpers import SPECS, TOKEN, client, in_process, run

BASE = "http://netmind.sim"
SPEC = SPECS["netmind"]
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_scale_sends_the_count_as_a_string_like_the_seed() -> None:
    app, sim, clock = in_process("netmind", provision_seconds=30)

    async def scenario() -> None:
        p = client("netmind", BASE, clock, transport=httpx.ASGITransport(app=app))
        info = await p.create("chat-llama", SPEC, 2)
        ready = await p.wait_ready("chat-llama", 600)
        assert (ready.status, ready.raw_status, ready.replicas) == ("ready", "available", 2)
        scaled = await p.scale(ready, 5)
        assert (scaled.status, scaled.replicas) == ("initializing", 5)  # parsed from "5"
        assert info.id == scaled.id

    run(scenario())
    writes = [(r["method"], r["body"]) for r in sim.requests]
    assert writes[0][1]["resource_metadata"] == {
        "flavor_id": SPEC["flavor_id"],
        "scale_type": "manual",
        "target_instance_number": 2,
    }
    assert writes[1] == ("PUT", {"resource_metadata": {"target_instance_number": "5"}})


@pytest.mark.parametrize(
    ("raw", "count"), [(3, 3), ("3", 3), (" 4 ", 4), ("x", None), (True, None)]
)
def test_instance_counts_parse_from_numbers_and_strings(raw: Any, count: int | None) -> None:
    assert parse_count(raw) == count


def test_a_fresh_client_finds_by_name_through_the_list() -> None:
    app, _sim, clock = in_process("netmind", provision_seconds=0)

    async def scenario() -> None:
        first = client("netmind", BASE, clock, transport=httpx.ASGITransport(app=app))
        made = await first.create("chat-llama", SPEC, 1)
        fresh = client("netmind", BASE, clock, transport=httpx.ASGITransport(app=app))
        found = await fresh.find("chat-llama")
        assert found is not None and found.id == made.id
        assert dict(found.spec) == {**SPEC, "description": "", "payment_type": "usd"}
        assert await fresh.find("other") is None

    run(scenario())


def test_flavor_given_by_display_name_is_resolved() -> None:
    app, sim, clock = in_process("netmind", provision_seconds=0)

    async def scenario() -> None:
        p = client("netmind", BASE, clock, transport=httpx.ASGITransport(app=app))
        spec = {"flavor": "NVIDIA_GeForce_RTX_4090", "deploy_metadata": SPEC["deploy_metadata"]}
        info = await p.create("chat-llama", spec, 1)
        assert info.spec["flavor_id"] == SPEC["flavor_id"]
        with pytest.raises(InvalidRequestError, match="no flavor named"):
            await p.create("other", {**spec, "flavor": "H100"}, 1)

    run(scenario())
    assert len(sim.current()) == 1


CASES: list[tuple[str, str, dict[str, Any] | None, dict[str, str], int]] = [
    ("POST", "/v1/inference-service", {"name": "x"}, AUTH, 400),
    (
        "POST",
        "/v1/inference-service",
        {"name": "a", "resource_metadata": {"flavor_id": "nope"}, "deploy_metadata": {}},
        AUTH,
        400,
    ),
    (
        "POST",
        "/v1/inference-service",
        {
            "name": "a",
            "resource_metadata": {"flavor_id": SPEC["flavor_id"], "target_instance_number": 0},
            "deploy_metadata": SPEC["deploy_metadata"],
        },
        AUTH,
        400,
    ),
    (
        "PUT",
        "/v1/inference-service/{id}",
        {"resource_metadata": {"target_instance_number": "0"}},
        AUTH,
        400,
    ),
    ("PUT", "/v1/inference-service/{id}", {"resource_metadata": {}}, AUTH, 400),
    ("GET", "/v1/inference-service/svc-nope", None, AUTH, 404),
    ("DELETE", "/v1/inference-service/svc-nope", None, AUTH, 404),
    ("GET", "/v1/inference-service/flavor", None, {}, 401),
]


@pytest.mark.parametrize(("method", "path", "body", "headers", "status"), CASES)
def test_simulator_validates_as_the_seed_allows(
    method: str, path: str, body: dict[str, Any] | None, headers: dict[str, str], status: int
) -> None:
    app, _sim, _clock = in_process("netmind", provision_seconds=0)

    async def scenario() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as h:
            made = await h.post(
                "/v1/inference-service",
                headers=AUTH,
                json={
                    "name": "base",
                    "resource_metadata": {
                        "flavor_id": SPEC["flavor_id"],
                        "scale_type": "manual",
                        "target_instance_number": 1,
                    },
                    "deploy_metadata": SPEC["deploy_metadata"],
                },
            )
            assert made.status_code == 200
            url = path.replace("{id}", made.json()["service_id"])
            return await h.request(method, url, json=body, headers=headers)

    response = run(scenario())
    assert response.status_code == status
    assert set(response.json()) == {"code", "message"}


def test_duplicate_name_is_refused_with_409_and_counted() -> None:
    app, sim, clock = in_process("netmind", provision_seconds=0)

    async def scenario() -> None:
        p = client("netmind", BASE, clock, transport=httpx.ASGITransport(app=app))
        info = await p.create("chat-llama", SPEC, 1)
        with pytest.raises(ConflictError):
            await p._create_once("chat-llama", SPEC, 1)  # type: ignore[attr-defined]
        assert (await p.create("chat-llama", SPEC, 1)).id == info.id  # adopts instead

    run(scenario())
    assert sim.name_collisions == 1  # only the deliberate raw attempt
    assert len(sim.current()) == 1
