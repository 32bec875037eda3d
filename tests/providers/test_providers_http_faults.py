"""Each client over real HTTP against its simulator served by uvicorn on a free port, with every
fault: each call ends in success after retries or in a typed error, and the simulator never
holds two deployments with one name."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from autoscaler.fakecloud import VirtualClock, create_app
from autoscaler.fakecloud.state import SimState
from autoscaler.providers.base import (
    DeploymentFailedError,
    InvalidRequestError,
    RateLimitedError,
    TemporaryError,
    UnauthorizedError,
)
from autoscaler.providers.http import MAX_RETRY_AFTER
from autoscaler.providers.registry import build_provider
from autoscaler.providers.retry import Backoff, RetryPolicy
from tests.providers.helpers import (
    PROVIDERS,
    SPECS,
    TOKEN,
    MaxJitter,
    ServedSim,
    Sleeps,
    client,
    profile,
    run,
)


class Served:
    def __init__(self, kind: str, served: ServedSim, clock: VirtualClock):
        self.kind = kind
        self.url = served.url
        self.sim: SimState = served.app.state.sim
        self.clock = clock

    def client(self, **kw: Any) -> Any:
        return client(self.kind, self.url, self.clock, **kw)

    def create_path(self) -> str:
        return {
            "neevcloud": "/aimodels",
            "netmind": "/v1/inference-service",
            "nebius": "/v0/dedicated_endpoints",
        }[self.kind]

    def creates(self) -> list[dict[str, Any]]:
        return [
            r
            for r in self.sim.requests
            if r["method"] == "POST" and r["path"].endswith(self.create_path())
        ]

    def check_names_unique(self) -> None:
        assert self.sim.names_held_twice() == []
        names = [d.name for d in self.sim.current()]
        assert len(names) == len(set(names))


@pytest.fixture(params=PROVIDERS)
def served(request: pytest.FixtureRequest) -> Iterator[Served]:
    clock = VirtualClock()
    app = create_app(request.param, token=TOKEN, provision_seconds=60, clock=clock)
    with ServedSim(app) as server:
        yield Served(request.param, server, clock)


def test_full_lifecycle_over_http(served: Served) -> None:
    async def scenario() -> None:
        p = served.client()
        await p.create("chat-llama", SPECS[served.kind], 2)
        ready = await p.wait_ready("chat-llama", 900)
        assert (ready.status, ready.replicas) == ("ready", 2)
        scaled = await p.scale(ready, 3)
        assert scaled.replicas == 3
        ready = await p.wait_ready("chat-llama", 900)
        assert (ready.status, ready.replicas) == ("ready", 3)
        assert ready.endpoint_url
        await p.delete(ready)
        served.clock.advance(600)
        assert await p.find("chat-llama") is None
        await p.aclose()

    run(scenario())
    served.check_names_unique()
    (dep,) = served.sim.deployments.values()
    assert dep.replica_seconds > 0


def test_server_errors_are_retried_to_success(served: Served) -> None:
    statuses: list[int | None] = []
    served.sim.script("error", times=3, status=503)

    async def scenario() -> None:
        p = build_provider(
            profile(served.kind, served.url),
            on_request=lambda prov, op, status, secs: statuses.append(status),
            sleep=Sleeps(served.clock),
            clock=served.clock.monotonic,
        )
        await p.create("chat-llama", SPECS[served.kind], 1)

    run(scenario())
    assert statuses[:3] == [503, 503, 503]
    assert statuses[-1] == 200 or statuses[-1] == 201
    served.check_names_unique()
    assert len(served.sim.current()) == 1


def test_rate_limits_wait_for_retry_after(served: Served) -> None:
    served.sim.script("rate_limit", times=2, retry_after=3.0)
    sleeps = Sleeps(served.clock)

    async def scenario() -> None:
        p = served.client(sleeps=sleeps)
        assert await p.list() == []

    run(scenario())
    assert sleeps.waits[:2] == [3.0, 3.0]


def test_a_retry_after_beyond_the_deadline_is_a_typed_error(served: Served) -> None:
    served.sim.script("rate_limit", times=1, retry_after=3600.0)

    async def scenario() -> None:
        p = served.client(retry=RetryPolicy(deadline=60.0))
        with pytest.raises(RateLimitedError) as info:
            await p.list()
        assert info.value.retry_after == MAX_RETRY_AFTER  # 3600 s asked, capped

    run(scenario())


def test_dropped_connections_are_retried(served: Served) -> None:
    served.sim.script("drop", times=2, method="GET")

    async def scenario() -> None:
        p = served.client()
        assert await p.list() == []

    run(scenario())


@pytest.mark.parametrize("kind", ["drop_after", "error_after", "drop"])
def test_lost_create_responses_never_duplicate(served: Served, kind: str) -> None:
    served.sim.script(kind, method="POST", path=served.create_path(), status=500)

    async def scenario() -> None:
        p = served.client()
        info = await p.create("chat-llama", SPECS[served.kind], 1)
        assert info.name == "chat-llama"

    run(scenario())
    served.check_names_unique()
    assert len(served.sim.current()) == 1
    assert served.sim.name_collisions == 0
    assert len(served.creates()) == (2 if kind == "drop" else 1)


def test_permanent_errors_are_typed_and_not_retried(served: Served) -> None:
    served.sim.script("error", times=1, status=400)
    statuses: list[int | None] = []

    async def scenario() -> None:
        p = build_provider(
            profile(served.kind, served.url),
            on_request=lambda prov, op, status, secs: statuses.append(status),
        )
        with pytest.raises(InvalidRequestError) as info:
            await p.list()
        assert info.value.status_code == 400

    run(scenario())
    assert statuses == [400]


def test_persistent_server_errors_exhaust_the_retry_budget(served: Served) -> None:
    served.sim.set_faults(error_rate=1.0, error_status=502)
    statuses: list[int | None] = []

    async def scenario() -> None:
        p = build_provider(
            profile(served.kind, served.url, max_retries=2),
            on_request=lambda prov, op, status, secs: statuses.append(status),
            sleep=Sleeps(served.clock),
            clock=served.clock.monotonic,
        )
        with pytest.raises(TemporaryError, match="HTTP 502"):
            await p.list()

    run(scenario())
    assert statuses == [502, 502, 502]


def test_wrong_token_is_unauthorized(served: Served) -> None:
    async def scenario() -> None:
        p = served.client(token="definitely-wrong-token")
        with pytest.raises(UnauthorizedError) as info:
            await p.list()
        assert "definitely-wrong-token" not in str(info.value)

    run(scenario())


def test_a_deployment_failed_through_sim_http_ends_wait_ready(served: Served) -> None:
    async def scenario() -> None:
        p = served.client()
        info = await p.create("chat-llama", SPECS[served.kind], 1)
        async with httpx.AsyncClient(base_url=served.url) as http:
            failed = await http.post(f"/_sim/deployments/{info.id}/fail")
            assert failed.status_code == 200
            assert (await http.post("/_sim/deployments/nope/fail")).status_code == 404
        with pytest.raises(DeploymentFailedError):
            await p.wait_ready("chat-llama", 900)

    run(scenario())


def test_sim_http_inspection_and_fault_control(served: Served) -> None:
    async def scenario() -> None:
        p = served.client()
        await p.create("chat-llama", SPECS[served.kind], 1)
        async with httpx.AsyncClient(base_url=served.url) as http:
            snap = (await http.get("/_sim/deployments")).json()
            assert [d["name"] for d in snap["deployments"]] == ["chat-llama"]
            assert snap["name_collisions"] == 0 and len(snap["current"]) == 1
            log = (await http.get("/_sim/requests")).json()["requests"]
            assert [r["method"] for r in log] == ["POST"]
            bad = await http.post("/_sim/faults", json={"error_rate": 2})
            assert bad.status_code == 400
            ok = await http.post(
                "/_sim/faults", json={"script": {"kind": "error", "status": 503, "times": 1}}
            )
            assert ok.json()["scripted"] == 1
            advanced = await http.post("/_sim/clock/advance", json={"seconds": 5})
            assert advanced.status_code == 200
        assert len(await p.list()) == 1  # the scripted 503 was retried

    run(scenario())


@pytest.fixture
def neev_wall_clock() -> Iterator[Served]:
    app = create_app("neevcloud", token=TOKEN, provision_seconds=0)
    with ServedSim(app) as server:
        yield Served("neevcloud", server, VirtualClock())


@pytest.mark.parametrize("kind", PROVIDERS)
def test_create_timeout_with_the_create_still_in_flight(kind: str) -> None:
    """The first create times out at the client but completes at the provider later; the
    client waits its backoff, finds the name, and does not send a second create."""
    app = create_app(kind, token=TOKEN, provision_seconds=0)
    with ServedSim(app) as server:
        served = Served(kind, server, VirtualClock())
        served.sim.script("latency", method="POST", seconds=0.6)

        async def scenario() -> None:
            p = build_provider(
                profile(kind, served.url, timeout=0.2),
                retry=RetryPolicy(backoff=Backoff(base=1.0, cap=1.0), max_retries=3),
                rng=MaxJitter(),
                sleep=asyncio.sleep,
            )
            info = await p.create("chat-llama", SPECS[kind], 1)
            assert info.name == "chat-llama"

        run(scenario())
    served.check_names_unique()
    assert len(served.sim.current()) == 1
    assert len(served.creates()) == 1
    assert served.sim.name_collisions == 0


def test_create_timeout_racing_the_retry_still_gives_one_deployment(
    neev_wall_clock: Served,
) -> None:
    """With no wait before the retry the second create can overtake the first: the provider
    refuses one of them as a duplicate, the client adopts the survivor."""
    served = neev_wall_clock
    served.sim.script("latency", method="POST", seconds=0.5)

    async def scenario() -> None:
        p = build_provider(
            profile("neevcloud", served.url, timeout=0.2),
            retry=RetryPolicy(backoff=Backoff(base=0.0, cap=0.0), max_retries=3),
            sleep=asyncio.sleep,
        )
        info = await p.create("chat-llama", SPECS["neevcloud"], 1)
        assert info.name == "chat-llama"
        await asyncio.sleep(0.6)  # let the slow first create finish at the provider

    run(scenario())
    served.check_names_unique()
    assert len(served.sim.current()) == 1
