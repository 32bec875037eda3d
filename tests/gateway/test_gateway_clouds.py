"""The gateway over real HTTP in front of the NetMind and Nebius-style simulators, routing
through each provider client's own `inference_route` (a separate gateway's wiring,
`separate()`, built from a daemon config file), to the fake vLLM the deployments serve:

- a chat completion and a stream (passed on chunk by chunk: the simulator holds the rest of
  its answer until the client has the first chunk) reach the deployment, with the model name
  the provider expects upstream (NetMind: the client's; Nebius-style: the `routing_key`);
- the upstream request carries the provider's inference credential (the profile's
  `inference.token`, or the API token both document for inference), never the client's key;
- while a ready deployment scales (the provider reports it `initializing` / `updating`, and
  NetMind reports no endpoint then), requests keep being answered on its last route, also
  from a model the gateway looks the deployment up for during the scale;
- a deployment deleted and recreated under its name gets a new route (its id is in it): a
  request is held while it is absent, and one coming after the recreate goes to the new route.

The same with the daemon (from zero, and scaling) is in test_gateway_clouds_daemon.py.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx
import pytest

from autoscaler.fakecloud import create_app
from autoscaler.fakecloud.inference import InferenceSettings
from autoscaler.gateway.service import Gateway
from autoscaler.providers.base import Provider
from autoscaler.providers.registry import build_provider
from autoscaler.runtime.gateway_wiring import ConfigRoutes, separate
from autoscaler.runtime.reload import load_checked
from tests.gateway.clouds import (
    CLOUDS,
    MID_SCALE_HEADERS,
    MID_SCALE_TIMEOUT,
    Cloud,
    Recorder,
    mid_scale_failure,
)
from tests.gateway.support import AUTH, KEY, running, sample, serving, until
from tests.gateway.test_gateway_daemon import _config, _gateway_section
from tests.runtime.daemon_support import TOKEN
from tests.services import free_port

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

KINDS = ("netmind", "nebius")
NAME = "chat-gw"
CHAT = {"model": "chat", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 4}
STREAM = {**CHAT, "stream": True, "stream_options": {"include_usage": True}}
ANSWERED = {"model": "chat", "outcome": "answered"}
SCALING_WORD = {"netmind": "initializing", "nebius": "updating"}  # the provider's words


@dataclass
class Stack:
    cloud: Cloud
    sim_url: str
    recorder: Recorder
    gateway: Gateway
    routes: ConfigRoutes
    url: str  # the gateway's
    daemon: Provider  # another client of the same profile: creates and scales, as the daemon

    async def ready(self) -> dict[str, Any]:
        """Create the deployment, wait until ready; its item in the provider's API."""
        await self.daemon.create(NAME, self.cloud.spec, 1)
        await self.daemon.wait_ready(NAME, 60)
        return await self.cloud.deployed(self.sim_url, NAME)


@asynccontextmanager
async def stack(
    folder: Path,
    kind: str,
    *,
    named_key: bool = True,
    scale_seconds: float | None = None,
    daemons: list[str] | None = None,
    provision_seconds: float = 0.2,
    on_failure: str = "report",
) -> AsyncIterator[Stack]:
    """The simulator, a separate gateway (asking `daemons`, when given) serving on a free port,
    and another client of the profile as the daemon (`on_failure`: the policy's
    `on_deployment_failure.action`)."""
    cloud = CLOUDS[kind]
    settings = InferenceSettings(inference_key=cloud.sim_key(named_key), ttft=0.01)
    app = create_app(
        kind,
        token=TOKEN,
        provision_seconds=provision_seconds,
        scale_seconds=scale_seconds,
        inference=settings,
    )
    recorder = Recorder(app)
    async with serving(recorder) as sim_url:
        path = _config(
            folder,
            sim_url,
            http_port=free_port(),
            gateway=_gateway_section(free_port(), folder, daemons),
            cloud=cloud,
            named_key=named_key,
            models=("chat", "chat-b"),
            on_failure=on_failure,
        )
        loaded = load_checked(str(path))
        assert not isinstance(loaded, list), loaded
        config, policies = loaded
        gateway, routes = separate(config, policies)
        daemon = build_provider(config.providers["sim"])
        try:
            async with running(gateway) as url:
                yield Stack(cloud, sim_url, recorder, gateway, routes, url, daemon)
        finally:
            await daemon.aclose()
            await routes.aclose()


def events(data: bytes) -> list[Any]:
    """The `data:` payloads of an SSE body, `[DONE]` as the string."""
    found: list[Any] = []
    for block in data.split(b"\n\n"):
        if block.startswith(b"data: "):
            payload = block.removeprefix(b"data: ")
            found.append("[DONE]" if payload == b"[DONE]" else json.loads(payload))
    return found


@pytest.mark.parametrize("named_key", [True, False], ids=["inference-token", "api-token"])
@pytest.mark.parametrize("kind", KINDS)
async def test_chat_and_stream_reach_the_deployment_with_the_provider_credential(
    tmp_path: Path, kind: str, named_key: bool
) -> None:
    async with stack(tmp_path, kind, named_key=named_key) as s:
        item = await s.ready()
        model = s.cloud.upstream_model(item, "chat")
        async with httpx.AsyncClient(base_url=s.url, timeout=60) as client:
            r = await client.post("/v1/chat/completions", json=CHAT, headers=AUTH)
            assert r.status_code == 200, r.text
            assert r.json()["model"] == model
            assert r.json()["choices"][0]["message"]["content"]
            s.recorder.gate = gate = asyncio.Event()
            async with client.stream(
                "POST", "/v1/chat/completions", json=STREAM, headers=AUTH
            ) as streamed:
                assert streamed.status_code == 200
                assert streamed.headers["content-type"].startswith("text/event-stream")
                chunks = streamed.aiter_bytes()
                head = b""
                with anyio.fail_after(30):  # a buffering gateway would never pass it on
                    while b"\n\n" not in head:
                        head += await chunks.__anext__()
                first = events(head)
                # The simulator holds the rest of its answer until the gate opens: the first
                # chunk reached the client on its own.
                assert len(first) == 1 and first[0]["choices"][0]["delta"]["content"]
                gate.set()
                rest = events(b"".join([c async for c in chunks]))
        assert rest[-1] == "[DONE]" and rest[-2]["usage"]["completion_tokens"] == 4
        assert {e["model"] for e in first + rest[:-1]} == {model}
        assert sample(s.gateway, "autoscaler_gateway_requests_total", **ANSWERED) == 2
    key = s.cloud.inference_key if named_key else TOKEN
    path = urlsplit(s.cloud.upstream_base(item, s.sim_url)).path + "/chat/completions"
    assert len(s.recorder.inference) == 2
    for seen in s.recorder.inference:
        assert seen["path"] == path
        headers = dict(seen["headers"])
        assert headers[b"authorization"] == f"Bearer {key}".encode()
        assert not any(KEY.encode() in value for _, value in seen["headers"])
        assert json.loads(seen["body"])["model"] == model


@pytest.mark.parametrize("kind", KINDS)
async def test_a_scaling_deployment_keeps_answering_on_its_last_route(
    tmp_path: Path, kind: str
) -> None:
    async with stack(tmp_path, kind, scale_seconds=3600) as s:  # the scale outlasts the test
        item = await s.ready()
        async with httpx.AsyncClient(base_url=s.url, timeout=60) as client:
            r = await client.post("/v1/chat/completions", json=CHAT, headers=AUTH)
            assert r.status_code == 200, r.text
            route = await s.routes.resolve("chat", fresh=True)
            assert route is not None
            ready = await s.daemon.find(NAME)
            assert ready is not None and ready.status == "ready"
            scaled = await s.daemon.scale(ready, 2)
            assert scaled.status == "initializing"
            during = await s.cloud.deployed(s.sim_url, NAME)
            assert during["status"] == SCALING_WORD[kind]
            if kind == "netmind":
                assert not during["endpoint_metadata"]  # no endpoint reported while scaling
            lookups = len(s.recorder.api)
            # chat-b (same policy) has not been routed yet: its first request makes the
            # gateway look the deployment up now, while it scales. Each is bounded (clouds.py:
            # a request held instead of answered fails in MID_SCALE_HOLD seconds, not 120).
            for model in ("chat", "chat-b", "chat"):
                await _answered_mid_scale(client, {**CHAT, "model": model})
            streamed = await _answered_mid_scale(client, {**STREAM, "model": "chat-b"})
            assert events(streamed.content)[-1] == "[DONE]"
            assert any(method == "GET" for method, _ in s.recorder.api[lookups:])
            assert await s.routes.resolve("chat", fresh=True) == route
            still = await s.daemon.find(NAME)
            assert still is not None and still.status == "initializing"  # answered mid-scale
    base = urlsplit(s.cloud.upstream_base(item, s.sim_url)).path
    assert [seen["path"] for seen in s.recorder.inference] == [base + "/chat/completions"] * 5
    assert sample(s.gateway, "autoscaler_gateway_requests_total", **ANSWERED) == 3
    assert (
        sample(s.gateway, "autoscaler_gateway_requests_total", model="chat-b", outcome="answered")
        == 2
    )


async def _answered_mid_scale(client: httpx.AsyncClient, body: dict[str, Any]) -> httpx.Response:
    """`body` posted while the deployment scales, answered 200 (a stream read to its end)."""
    model = body["model"]
    request = client.build_request(
        "POST",
        "/v1/chat/completions",
        json=body,
        headers=MID_SCALE_HEADERS,
        timeout=MID_SCALE_TIMEOUT,
    )
    try:
        with anyio.fail_after(MID_SCALE_TIMEOUT):
            r = await client.send(request)
    except (TimeoutError, httpx.TimeoutException) as exc:
        pytest.fail(mid_scale_failure(model, None, repr(exc)))
    assert r.status_code == 200, mid_scale_failure(model, r.status_code, r.text)
    return r


async def _gone(provider: Provider) -> None:
    """Delete the deployment and wait until the provider no longer lists it."""
    info = await provider.find(NAME)
    assert info is not None
    await provider.delete(info)
    with anyio.fail_after(60):
        while await provider.find(NAME) is not None:
            await anyio.sleep(0.05)


@pytest.mark.parametrize("kind", KINDS)
async def test_a_deployment_recreated_under_its_name_is_answered_on_its_new_route(
    tmp_path: Path, kind: str
) -> None:
    """Both providers put the deployment's id in its route (NetMind's endpoint URL, the
    Nebius-style routing key), so a recreate changes it. The gateway still holds the old one."""
    async with stack(tmp_path, kind) as s:
        first = await s.ready()
        async with httpx.AsyncClient(base_url=s.url, timeout=60) as client:
            assert (await client.post("/v1/chat/completions", json=CHAT, headers=AUTH)).is_success
            # At zero while the gateway still has the old route: the request is held (the
            # route fails, the lookup finds nothing) and answered once it is back.
            await _gone(s.daemon)
            held = asyncio.ensure_future(
                client.post("/v1/chat/completions", json=CHAT, headers=AUTH)
            )
            await until(lambda: s.gateway.held() == {"chat": 1})
            second = await s.ready()
            r = await held
            assert r.status_code == 200, r.text
            # Recreated before the next request comes: the old route answers 404, the lookup
            # finds the new one ready, and the request goes there.
            await _gone(s.daemon)
            third = await s.ready()
            r = await client.post("/v1/chat/completions", json=CHAT, headers=AUTH)
            assert r.status_code == 200, r.text
            assert r.json()["model"] == s.cloud.upstream_model(third, "chat")
    routes = [
        (
            urlsplit(s.cloud.upstream_base(i, s.sim_url)).path + "/chat/completions",
            s.cloud.upstream_model(i, "chat"),
        )
        for i in (first, second, third)
    ]
    sent = [(seen["path"], json.loads(seen["body"])["model"]) for seen in s.recorder.inference]
    assert len(set(routes)) == 3  # the id is in each route
    assert sent[0] == routes[0]
    assert sent[-2:] == [routes[1], routes[2]]  # the old route's 404, then the new route
    assert sample(s.gateway, "autoscaler_gateway_requests_total", **ANSWERED) == 3
