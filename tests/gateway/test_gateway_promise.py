"""The gateway's promise, held against misbehaving clients, deployments and its own stop: a
request it accepted ends answered, or refused with a reason (an OpenAI error with a status, or
for a stream an error event), never cut off without one. Real HTTP on loopback.

- a deployment that breaks off a whole (not streamed) answer after its head: 503
  `upstream_error`, not a 200 cut short;
- the gateway stopping while a stream and a whole answer are under way, past its grace: the
  stream ends with a `shutting_down` error event, the whole answer is a 503 `shutting_down`
  (not a stream cut off and uvicorn's plain 500); a request that comes once it has begun to
  stop is refused so at once, not held with nothing left to release it;
- a request sent on at once (the deployment looked ready) and held only then, because the
  deployment has gone since: its `X-Scale-Up-Timeout` still bounds the hold;
- a reload that removes a model while requests for it are held: they are answered at once as
  a request coming after it is (404, `model_removed`), not held until `max_hold` for a
  deployment nothing will bring back.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from autoscaler.gateway.routes import RouteTable
from tests.gateway.support import (
    AUTH,
    RecordingActivator,
    StaticRoutes,
    Upstream,
    make_gateway,
    policy,
    request_body,
    route_to,
    running,
    sample,
    serving,
    until,
)
from tests.gateway.test_gateway_proxy import CHAT, REQUESTS

pytestmark = pytest.mark.anyio


async def breaks_off(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A deployment that sends the head and part of a JSON answer, then dies."""
    if scope["type"] != "http":
        return
    await request_body(receive)
    head = [(b"content-type", b"application/json"), (b"content-length", b"100")]
    await send({"type": "http.response.start", "status": 200, "headers": head})
    await send({"type": "http.response.body", "body": b'{"choices": [', "more_body": True})
    raise RuntimeError("deployment crashed mid-answer")


async def test_a_whole_answer_broken_off_is_refused_with_a_reason() -> None:
    async with serving(breaks_off) as up:
        gateway = make_gateway([policy("p", "chat")], StaticRoutes({"p": route_to(up)}))
        async with running(gateway) as gw, httpx.AsyncClient(base_url=gw, timeout=30) as client:
            r = await client.post("/v1/chat/completions", json=CHAT, headers=AUTH)
    assert r.status_code == 503, r.text
    assert r.json()["error"]["code"] == "upstream_error"
    assert int(r.headers["retry-after"]) >= 1
    assert sample(gateway, REQUESTS, model="chat", outcome="refused_upstream_error") == 1


class Slow:
    """A deployment that answers only once `go` is set: a whole answer after it, or a stream
    whose first event comes at once and the rest after it."""

    def __init__(self) -> None:
        self.go = asyncio.Event()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        stream = json.loads(await request_body(receive)).get("stream")
        kind = b"text/event-stream" if stream else b"application/json"
        if not stream:
            await self.go.wait()
        head = [(b"content-type", kind)]
        await send({"type": "http.response.start", "status": 200, "headers": head})
        await send({"type": "http.response.body", "body": b"data: {}\n\n", "more_body": True})
        await self.go.wait()
        await send({"type": "http.response.body", "body": b"data: [DONE]\n\n"})


async def test_stopping_ends_streams_and_answers_under_way_with_the_reason() -> None:
    slow = Slow()
    async with serving(slow) as up, httpx.AsyncClient(timeout=30) as client:
        gateway = make_gateway([policy("p", "chat")], StaticRoutes({"p": route_to(up)}))

        async def stream(url: str) -> bytes:
            body = {**CHAT, "stream": True}
            async with client.stream("POST", url, json=body, headers=AUTH) as r:
                return b"".join([c async for c in r.aiter_bytes()])

        async with running(gateway) as gw:
            url = gw + "/v1/chat/completions"
            streaming = asyncio.ensure_future(stream(url))
            whole = asyncio.ensure_future(client.post(url, json=CHAT, headers=AUTH))
            in_flight = "autoscaler_gateway_in_flight_requests"
            await until(lambda: sample(gateway, in_flight, model="chat") == 2)
        # The server stopped: past its grace it cancelled both requests.
        data, r = await streaming, await whole
        slow.go.set()
    last = data.strip().split(b"\n\n")[-1]
    assert json.loads(last.removeprefix(b"data: "))["error"]["code"] == "shutting_down", data
    assert r.status_code == 503, r.text
    assert r.json()["error"]["code"] == "shutting_down"
    assert sample(gateway, REQUESTS, model="chat", outcome="refused_shutting_down") == 2


async def test_a_request_once_the_gateway_stops_is_refused_at_once() -> None:
    gateway = make_gateway([policy("p", "chat")], StaticRoutes(), RecordingActivator())
    async with running(gateway) as gw, httpx.AsyncClient(base_url=gw, timeout=30) as client:
        await gateway.aclose()  # what the server's stop does first (open connections go on)
        r = await client.post("/v1/chat/completions", json=CHAT, headers=AUTH)
    assert r.status_code == 503, r.text
    assert r.json()["error"]["code"] == "shutting_down"


async def test_held_requests_for_a_model_a_reload_removed_are_answered_at_once() -> None:
    routes = StaticRoutes()  # at zero
    gateway = make_gateway(
        [policy("p", "chat"), policy("q", "other")], routes, RecordingActivator()
    )
    async with running(gateway) as gw, httpx.AsyncClient(base_url=gw, timeout=30) as client:
        held = asyncio.ensure_future(client.post("/v1/chat/completions", json=CHAT, headers=AUTH))
        await until(lambda: gateway.held() == {"chat": 1})
        gateway.set_table(RouteTable.build([policy("q", "other")], gateway.config))
        r = await held
    assert r.status_code == 404, r.text
    assert r.json()["error"]["code"] == "model_removed"
    assert sample(gateway, REQUESTS, model="chat", outcome="refused_model_removed") == 1


async def test_the_hold_header_bounds_a_request_held_after_it_was_sent_on() -> None:
    upstream = Upstream()
    async with serving(upstream) as up:
        routes = StaticRoutes({"p": route_to(up)})
        gateway = make_gateway([policy("p", "chat", max_hold=600)], routes, RecordingActivator())
        async with running(gateway) as gw, httpx.AsyncClient(base_url=gw, timeout=30) as client:
            assert (await client.post("/v1/chat/completions", json=CHAT, headers=AUTH)).is_success
            routes.routes["p"] = None  # deleted: its old route answers 404 from now on
            upstream.mode = "404"
            r = await client.post(
                "/v1/chat/completions", json=CHAT, headers={**AUTH, "X-Scale-Up-Timeout": "0.5"}
            )
    assert r.status_code == 503, r.text
    assert r.json()["error"]["code"] == "hold_timeout"
    assert len(upstream.seen) == 2  # sent on once, then held
