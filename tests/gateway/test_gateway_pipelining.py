"""Several requests on one keep-alive connection to the gateway, over real HTTP: answers go
in request order (a malformed request pipelined behind one held for its deployment, or
streaming from a slow one, is refused after that answer), HEAD answers like GET without a
body, and a client that leaves while its held request has another pipelined behind it
cancels the hold at once."""

from __future__ import annotations

import asyncio
import json

import anyio
import pytest

from tests.gateway.support import (
    KEY,
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
from tests.rawhttp import assert_heads_match_gets, converse, heads_and_gets, responses

pytestmark = pytest.mark.anyio

MALFORMED = b"GET /v1/models HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n"


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
async def test_a_malformed_request_behind_a_held_one_is_refused_after_its_answer(
    stream: bool,
) -> None:
    upstream = Upstream()
    async with serving(upstream) as up:
        routes = StaticRoutes()
        gateway = make_gateway([policy("p", "chat")], routes)
        async with running(gateway) as gw, anyio.create_task_group() as tg:

            async def ready_once_held() -> None:
                await until(lambda: gateway.held().get("chat") == 1)
                routes.routes["p"] = route_to(up)

            tg.start_soon(ready_once_held)
            answer = await converse(*address(gw), raw_chat(stream) + MALFORMED)
    found = responses(answer)
    assert [a.status for a in found] == [200, 400], answer
    if stream:
        assert found[0].body.endswith(b"data: [DONE]\n\n"), found[0]
    else:
        assert json.loads(found[0].body)["usage"]["completion_tokens"] == 4
    assert json.loads(found[1].body)["error"]["code"] == "invalid_http"
    assert sample(gateway, "autoscaler_gateway_requests_total", model="chat", outcome="answered")


async def test_a_malformed_request_behind_a_stream_in_progress_is_refused_after_it() -> None:
    upstream = Upstream(gate=asyncio.Event())
    async with serving(upstream) as up:
        gateway = make_gateway([policy("p", "chat")], StaticRoutes({"p": route_to(up)}))
        async with running(gateway) as gw, anyio.create_task_group() as tg:

            async def finish_once_streaming() -> None:
                await until(lambda: bool(upstream.seen))  # the gateway read both requests
                assert upstream.gate is not None
                upstream.gate.set()

            tg.start_soon(finish_once_streaming)
            answer = await converse(*address(gw), raw_chat(stream=True) + MALFORMED)
    found = responses(answer)
    assert [a.status for a in found] == [200, 400], answer
    assert found[0].body.startswith(b"data: ") and found[0].body.endswith(b"data: [DONE]\n\n")


async def test_head_answers_like_get_without_a_body_on_every_get_route() -> None:
    gateway = make_gateway([policy("p", "chat")], StaticRoutes())
    auth = f"Authorization: Bearer {KEY}\r\n".encode()
    paths = (b"/v1/models", b"/healthz", b"/metrics", b"/signals?window=5")
    requests = heads_and_gets(paths, auth)
    refused = b"HEAD /v1/chat/completions HTTP/1.1\r\nHost: x\r\n\r\n"
    last = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    async with running(gateway) as gw:
        answer = await converse(*address(gw), requests + refused + last)
    heads = {*range(0, 2 * len(paths), 2), 2 * len(paths)}
    found = responses(answer, bodiless=heads)
    assert [a.status for a in found] == [200] * 2 * len(paths) + [405, 200], answer
    assert found[-1].body == b'{"status":"ok"}'  # the last request parsed: no stray bytes
    assert_heads_match_gets(found, paths, varying=(b"/metrics", b"/signals?window=5"))


async def test_a_client_gone_with_a_request_pipelined_behind_a_held_one_cancels_the_hold() -> None:
    """uvicorn tells only the newest request of a connection that the client left: the held
    one before it stayed held, and woke the deployment, until `max_hold`."""
    gateway = make_gateway([policy("p", "chat", max_hold=600.0)], StaticRoutes())
    async with running(gateway) as gw:
        stream = await anyio.connect_tcp(*address(gw))
        await stream.send(raw_chat() + b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        await until(lambda: gateway.held().get("chat") == 1)
        await stream.aclose()
        await until(lambda: gateway.held().get("chat") == 0)
    assert sample(gateway, "autoscaler_gateway_requests_total", model="chat", outcome="cancelled")
