"""The gateway over real HTTP on loopback: a client -> the gateway -> a small upstream.

Streaming passes chunk by chunk, models route to their own deployment, the client's key is
checked and never forwarded (the provider's is), upstream errors keep their status in the
OpenAI error shape, and held requests are released, time out, overflow or are cancelled,
each counted once by outcome."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from structlog.testing import capture_logs

from autoscaler.providers.base import InferenceRoute
from tests.gateway.support import (
    AUTH,
    CHAT,
    KEY,
    PROVIDER_KEY,
    RecordingActivator,
    StaticRoutes,
    Upstream,
    address,
    make_gateway,
    policy,
    raw_chat,
    route_to,
    running,
    sample,
    serving,
    until,
)
from tests.services import free_port

pytestmark = pytest.mark.anyio

REQUESTS = "autoscaler_gateway_requests_total"


async def test_non_streaming_answer_with_provider_credential_and_usage() -> None:
    upstream = Upstream()
    async with serving(upstream) as up:
        routes = StaticRoutes({"p": route_to(up, model="org/served-name")})
        gateway = make_gateway([policy("p", "chat")], routes)
        async with running(gateway) as gw, httpx.AsyncClient(base_url=gw) as client:
            r = await client.post(
                "/v1/chat/completions",
                json=CHAT,
                headers={
                    **AUTH,
                    "Connection": "keep-alive, x-hop",
                    "X-Hop": "1",
                    "Proxy-Authorization": "Basic eA==",
                    "Cookie": "a=b",
                    "X-Request-Id": "req-1",
                },
            )
            assert r.status_code == 200, r.text
            assert r.json()["usage"]["completion_tokens"] == 4
            assert (
                await client.post(
                    "/v1/embeddings", json={"model": "chat", "input": "x"}, headers=AUTH
                )
            ).status_code == 200
    seen = upstream.seen[0]
    assert seen["path"] == "/v1/chat/completions"
    assert seen["headers"][b"authorization"] == f"Bearer {PROVIDER_KEY}".encode()
    assert KEY.encode() not in b"".join(seen["headers"].values())
    for dropped in (b"x-hop", b"proxy-authorization", b"cookie"):
        assert dropped not in seen["headers"]
    assert seen["headers"][b"x-request-id"] == b"req-1"
    assert seen["body"]["model"] == "org/served-name"  # the route's name for the model
    assert upstream.seen[1]["path"] == "/v1/embeddings"
    assert sample(gateway, REQUESTS, model="chat", outcome="answered") == 2
    assert sample(gateway, "autoscaler_gateway_tokens_total", model="chat", kind="prompt") == 14
    assert sample(gateway, "autoscaler_gateway_tokens_total", model="chat", kind="completion") == 8


async def test_streaming_passes_chunk_by_chunk_with_streamed_usage() -> None:
    upstream = Upstream(gate=asyncio.Event())
    async with serving(upstream) as up:
        gateway = make_gateway([policy("p", "chat")], StaticRoutes({"p": route_to(up)}))
        body = {**CHAT, "stream": True, "stream_options": {"include_usage": True}}
        async with (
            running(gateway) as gw,
            httpx.AsyncClient(base_url=gw) as client,
            client.stream("POST", "/v1/chat/completions", json=body, headers=AUTH) as r,
        ):
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")
            chunks = r.aiter_bytes()
            first = await chunks.__anext__()
            # The upstream is still waiting to send the rest: nothing was buffered.
            assert b"t0" in first
            assert upstream.gate is not None
            upstream.gate.set()
            rest = b"".join([c async for c in chunks])
    assert b"t3" in rest and rest.endswith(b"data: [DONE]\n\n")
    assert sample(gateway, "autoscaler_gateway_tokens_total", model="chat", kind="completion") == 4
    assert sample(gateway, "autoscaler_gateway_time_to_first_byte_seconds_count", model="chat") == 1


async def test_routes_by_model_and_lists_models() -> None:
    a, b = Upstream(), Upstream()
    async with serving(a) as up_a, serving(b) as up_b:
        routes = StaticRoutes({"pa": route_to(up_a), "pb": route_to(up_b)})
        gateway = make_gateway(
            [policy("pa", "model-a"), policy("pb", "model-b", "model-b2")], routes
        )
        async with running(gateway) as gw, httpx.AsyncClient(base_url=gw) as client:
            for model in ("model-a", "model-b2", "model-b"):
                r = await client.post(
                    "/v1/chat/completions", json={**CHAT, "model": model}, headers=AUTH
                )
                assert r.status_code == 200
            r = await client.post(
                "/v1/chat/completions", json={**CHAT, "model": "nope"}, headers=AUTH
            )
            assert r.status_code == 404
            assert r.json()["error"]["code"] == "model_not_found"
            listed = (await client.get("/v1/models", headers=AUTH)).json()
    assert [m["body"]["model"] for m in a.seen] == ["model-a"]
    assert [m["body"]["model"] for m in b.seen] == ["model-b2", "model-b"]
    assert [m["id"] for m in listed["data"]] == ["model-a", "model-b", "model-b2"]


async def test_auth_refused_and_keys_never_logged() -> None:
    upstream = Upstream()
    async with serving(upstream) as up:
        gateway = make_gateway([policy("p", "chat")], StaticRoutes({"p": route_to(up)}))
        async with running(gateway) as gw, httpx.AsyncClient(base_url=gw) as client:
            with capture_logs() as logs:
                for headers in ({}, {"Authorization": "Bearer sk-wrong"}, {"Authorization": KEY}):
                    r = await client.post("/v1/chat/completions", json=CHAT, headers=headers)
                    assert r.status_code == 401
                    assert r.json()["error"]["type"] == "authentication_error"
                assert (await client.get("/v1/models")).status_code == 401
            second = await client.post(
                "/v1/chat/completions", json=CHAT, headers={"Authorization": "Bearer sk-second-key"}
            )
            assert second.status_code == 200
            metrics = (await client.get("/metrics")).text
    assert upstream.seen and len(upstream.seen) == 1
    assert "sk-wrong" not in repr(logs) and KEY not in repr(logs) and KEY not in metrics


async def test_body_limit_bad_json_and_method() -> None:
    gateway = make_gateway([policy("p", "chat")], StaticRoutes(), max_body=2048)
    async with running(gateway) as gw, httpx.AsyncClient(base_url=gw) as client:
        big = {**CHAT, "pad": "x" * 4096}
        r = await client.post("/v1/chat/completions", json=big, headers=AUTH)
        assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"
        r = await client.post("/v1/chat/completions", content=b"{nope", headers=AUTH)
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"
        r = await client.get("/v1/chat/completions", headers=AUTH)
        assert r.status_code == 405


async def test_upstream_errors_reach_the_client_in_the_openai_shape() -> None:
    upstream = Upstream(mode="500")
    async with serving(upstream) as up:
        gateway = make_gateway([policy("p", "chat")], StaticRoutes({"p": route_to(up)}))
        async with running(gateway) as gw, httpx.AsyncClient(base_url=gw) as client:
            r = await client.post("/v1/chat/completions", json=CHAT, headers=AUTH)
    assert r.status_code == 500
    error = r.json()["error"]
    assert error["type"] == "server_error" and "boom" in error["message"]
    assert error["code"] == "upstream_500"


async def test_upstream_breaking_off_a_stream_ends_with_an_error_event() -> None:
    upstream = Upstream(mode="break")
    async with serving(upstream) as up:
        gateway = make_gateway([policy("p", "chat")], StaticRoutes({"p": route_to(up)}))
        async with (
            running(gateway) as gw,
            httpx.AsyncClient(base_url=gw) as client,
            client.stream(
                "POST", "/v1/chat/completions", json={**CHAT, "stream": True}, headers=AUTH
            ) as r,
        ):
            assert r.status_code == 200
            data = b"".join([c async for c in r.aiter_bytes()])
    assert b"t0" in data
    last = data.strip().split(b"\n\n")[-1]
    assert json.loads(last.removeprefix(b"data: "))["error"]["code"] == "upstream_error"
    assert sample(gateway, REQUESTS, model="chat", outcome="refused_upstream_error") == 1


@pytest.mark.parametrize(
    ("base_url", "headers", "why"),
    [
        ("http://127.0.0.1:99999/v1", {}, "Port out of range"),
        ("http://127.0.0.1:9/v1", {"Authorization": "Bearer \u043a\u043b\u044e\u0447"}, "latin-1"),
    ],
    ids=["port out of range", "credential not latin-1"],
)
async def test_a_route_no_request_can_go_on_is_refused_with_why(
    base_url: str, headers: dict[str, str], why: str
) -> None:
    """It was a bare 500 (text, uvicorn's) counted as `cancelled`."""
    route = InferenceRoute(base_url=base_url, headers=headers, model=None)
    gateway = make_gateway([policy("p", "chat")], StaticRoutes({"p": route}))
    async with running(gateway) as gw, httpx.AsyncClient(base_url=gw, timeout=30) as client:
        r = await client.post("/v1/chat/completions", json=CHAT, headers=AUTH)
    assert r.status_code == 503, r.text
    error = r.json()["error"]
    assert error["code"] == "upstream_unavailable" and why in error["message"], error
    assert "\u043a" not in r.text  # a credential's text is never quoted
    assert sample(gateway, REQUESTS, model="chat", outcome="refused_upstream_unavailable") == 1


async def test_a_deployment_answering_garbage_is_refused_at_once_not_held_again() -> None:
    """A deployment never heard from before (starting, for the gateway) that answers with
    something that is not HTTP: it was held again and asked again every `poll_interval`
    until `max_hold`, then refused `hold_timeout`, a wrong reason ten minutes later."""
    asked = 0

    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal asked
        asked += 1
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nX-Odd: a\x01b\r\nContent-Length: 2\r\n\r\n{}")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(garbage, "127.0.0.1", 0)
    async with server:
        route = route_to(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}")
        gateway = make_gateway([policy("p", "chat", max_hold=600.0)], StaticRoutes({"p": route}))
        async with running(gateway) as gw, httpx.AsyncClient(base_url=gw, timeout=60) as client:
            r = await client.post("/v1/chat/completions", json=CHAT, headers=AUTH)
    assert r.status_code == 503, r.text
    error = r.json()["error"]
    assert error["code"] == "upstream_unavailable" and "malformed response" in error["message"]
    assert asked == 1
    assert sample(gateway, REQUESTS, model="chat", outcome="refused_upstream_unavailable") == 1


async def test_hold_then_release_after_activation() -> None:
    upstream = Upstream()
    async with serving(upstream) as up:
        routes = StaticRoutes({"p": None})  # at zero: no deployment
        activator = RecordingActivator()
        gateway = make_gateway([policy("p", "chat")], routes, activator)
        async with running(gateway) as gw, httpx.AsyncClient(base_url=gw, timeout=60) as client:
            tasks = [
                asyncio.ensure_future(client.post("/v1/chat/completions", json=CHAT, headers=AUTH))
                for _ in range(3)
            ]
            await until(
                lambda: sample(gateway, "autoscaler_gateway_held_requests", model="chat") == 3
            )
            await until(lambda: bool(activator.calls))
            assert activator.calls[0][0] == "p" and activator.calls[0][1]["chat"] >= 1
            assert not upstream.seen
            routes.routes["p"] = route_to(up)  # the deployment is ready
            answers = await asyncio.gather(*tasks)
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert sample(gateway, REQUESTS, model="chat", outcome="answered") == 3
    assert sample(gateway, "autoscaler_gateway_held_requests", model="chat") == 0
    assert sample(gateway, "autoscaler_gateway_hold_seconds_count", model="chat") == 3


async def test_start_up_404_is_held_not_passed_on() -> None:
    upstream = Upstream(mode="404")  # ready per the provider, the endpoint still loading
    async with serving(upstream) as up:
        gateway = make_gateway([policy("p", "chat")], StaticRoutes({"p": route_to(up)}))
        async with running(gateway) as gw, httpx.AsyncClient(base_url=gw, timeout=60) as client:
            task = asyncio.ensure_future(
                client.post("/v1/chat/completions", json=CHAT, headers=AUTH)
            )
            await until(lambda: len(upstream.seen) >= 2)
            assert not task.done()
            upstream.mode = "ok"
            r = await task
    assert r.status_code == 200
    assert sample(gateway, REQUESTS, model="chat", outcome="answered") == 1


async def test_hold_timeout_from_the_header_is_a_503_with_retry_after() -> None:
    gateway = make_gateway([policy("p", "chat")], StaticRoutes(), RecordingActivator())
    async with running(gateway) as gw, httpx.AsyncClient(base_url=gw, timeout=60) as client:
        r = await client.post(
            "/v1/chat/completions", json=CHAT, headers={**AUTH, "X-Scale-Up-Timeout": "0.3"}
        )
        bad = await client.post(
            "/v1/chat/completions", json=CHAT, headers={**AUTH, "X-Scale-Up-Timeout": "soon"}
        )
    assert r.status_code == 503 and int(r.headers["retry-after"]) >= 1
    assert r.json()["error"]["code"] == "hold_timeout"
    assert bad.status_code == 400
    assert sample(gateway, REQUESTS, model="chat", outcome="refused_hold_timeout") == 1


async def test_queue_overflow_refused_at_once() -> None:
    gateway = make_gateway([policy("p", "chat", max_held=1)], StaticRoutes(), RecordingActivator())
    async with running(gateway) as gw, httpx.AsyncClient(base_url=gw, timeout=60) as client:
        held = asyncio.ensure_future(
            client.post(
                "/v1/chat/completions", json=CHAT, headers={**AUTH, "X-Scale-Up-Timeout": "60"}
            )
        )
        await until(lambda: sample(gateway, "autoscaler_gateway_held_requests", model="chat") == 1)
        r = await client.post("/v1/chat/completions", json=CHAT, headers=AUTH)
        assert r.status_code == 503 and r.json()["error"]["code"] == "queue_full"
        assert "retry-after" in r.headers
        held.cancel()
    assert sample(gateway, REQUESTS, model="chat", outcome="refused_queue_full") == 1


async def test_client_disconnect_while_held_leaves_the_queue() -> None:
    gateway = make_gateway([policy("p", "chat")], StaticRoutes(), RecordingActivator())
    async with running(gateway) as gw:
        _reader, writer = await asyncio.open_connection(*address(gw))
        writer.write(raw_chat())
        await writer.drain()
        await until(lambda: sample(gateway, "autoscaler_gateway_held_requests", model="chat") == 1)
        writer.close()
        await until(lambda: sample(gateway, REQUESTS, model="chat", outcome="cancelled") == 1)
        assert sample(gateway, "autoscaler_gateway_held_requests", model="chat") == 0
        assert gateway.held() == {"chat": 0}


async def test_gateway_source_sums_separate_gateways_over_http() -> None:
    from autoscaler.policy.model import GatewaySource
    from autoscaler.sources.gateway import GatewaySignalSource

    upstream = Upstream()
    async with serving(upstream) as up:
        first = make_gateway([policy("p", "chat")], StaticRoutes({"p": route_to(up)}))
        second = make_gateway([policy("p", "chat")], StaticRoutes(), RecordingActivator())
        async with (
            running(first) as gw1,
            running(second) as gw2,
            httpx.AsyncClient(timeout=60) as client,
        ):
            for _ in range(3):
                r = await client.post(gw1 + "/v1/chat/completions", json=CHAT, headers=AUTH)
                assert r.status_code == 200
            held = asyncio.ensure_future(
                client.post(gw2 + "/v1/chat/completions", json=CHAT, headers=AUTH)
            )
            await until(lambda: second.held() == {"chat": 1})

            def source(signal: str, *urls: str) -> GatewaySignalSource:
                spec = GatewaySource(signal=signal, models=("chat",), urls=urls, window=60)
                return GatewaySignalSource(spec, name="demand")

            dead = f"http://127.0.0.1:{free_port()}"
            both = source("held", gw1, gw2, dead)  # a gateway that is gone holds nothing
            assert await both.read() == 1
            arrivals = source("arrival_rate", gw1, gw2)
            assert await arrivals.read() == pytest.approx(4 / 60)
            tokens = source("completion_tokens_rate", gw1)
            assert await tokens.read() == pytest.approx(12 / 60)
            nobody = source("held", dead)
            from autoscaler.sources.base import SourceError

            with pytest.raises(SourceError, match="no gateway answered"):
                await nobody.read()
            for s in (both, arrivals, tokens, nobody):
                await s.aclose()
            held.cancel()


async def test_client_leaving_a_stream_closes_the_upstream() -> None:
    upstream = Upstream(gate=asyncio.Event())
    async with serving(upstream) as up:
        gateway = make_gateway([policy("p", "chat")], StaticRoutes({"p": route_to(up)}))
        async with running(gateway) as gw:
            client = httpx.AsyncClient(base_url=gw)
            async with client.stream(
                "POST", "/v1/chat/completions", json={**CHAT, "stream": True}, headers=AUTH
            ) as r:
                first = await r.aiter_bytes().__anext__()
                assert b"t0" in first
            await client.aclose()  # gone mid-stream, the upstream still generating
            await until(lambda: sample(gateway, REQUESTS, model="chat", outcome="cancelled") == 1)
            assert sample(gateway, "autoscaler_gateway_in_flight_requests", model="chat") == 0
            assert upstream.gate is not None
            upstream.gate.set()
