"""Malformed requests over real HTTP: each gets a 4xx whose JSON names what is wrong, never a
500, a traceback or an unbounded buffer. The server's own answers (requests its parser
refuses, heads past `max_head`) on both of uvicorn's protocols; the daemon's endpoints over
a FakeControl (bodies, query strings, methods, Authorization headers, a client gone
mid-body)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
import pytest
from starlette.requests import ClientDisconnect

from autoscaler.httpserver import HttpProtocol, ServerLimits, serve_asgi
from autoscaler.runtime.http import create_http_app, serve_http
from autoscaler.runtime.metrics import Metrics
from autoscaler.secrets import Secret
from tests.rawhttp import exchange, json_response
from tests.runtime.test_runtime_http_app import TOKEN, FakeControl, bearer

pytestmark = pytest.mark.anyio
BOTH_PROTOCOLS = pytest.mark.parametrize("http", ["h11", "httptools"])


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def _hello(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hello\n"})


@asynccontextmanager
async def _server(app: Any, http: HttpProtocol, limits: ServerLimits) -> AsyncIterator[Any]:
    async with anyio.create_task_group() as tg:
        yield await tg.start(
            lambda **kw: serve_asgi(app, "127.0.0.1:0", limits=limits, http=http, **kw)
        )
        tg.cancel_scope.cancel()


@BOTH_PROTOCOLS
async def test_a_request_the_parser_refuses_gets_a_json_400_naming_it(http: HttpProtocol) -> None:
    async with _server(_hello, http, ServerLimits()) as (host, port):
        for bad in (
            b"GET / HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
        ):
            status, body = json_response(await exchange(host, port, bad))
            assert status == 400
            assert body["error"].startswith("invalid HTTP request: "), body
            assert len(body["error"]) > len("invalid HTTP request: "), body
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as client:
            assert (await client.get("/")).text == "hello\n"  # the server goes on


@BOTH_PROTOCOLS
async def test_a_head_past_max_head_gets_431_and_is_not_buffered(http: HttpProtocol) -> None:
    limits = ServerLimits(max_head=4096)
    async with _server(_hello, http, limits) as (host, port):
        # A header that never ends: before the cap, httptools kept all of it.
        head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: "
        answer = await exchange(host, port, head, b"y" * 1024, times=10_000)
        assert answer.startswith(b"HTTP/1.1 431"), answer[:200]
        assert json_response(answer)[1] == {"error": "request head larger than 4096 bytes"}
        # Pipelined requests in one read are not one big head.
        many = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 300
        last = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        answer = await exchange(host, port, many + last)
        assert answer.count(b"HTTP/1.1 200") == 301, answer[-300:]


@asynccontextmanager
async def _daemon(control: FakeControl) -> AsyncIterator[httpx.AsyncClient]:
    app = create_http_app(control, Metrics().registry, Secret(TOKEN))
    async with anyio.create_task_group() as tg:
        host, port = await tg.start(serve_http, app, "127.0.0.1:0")
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}", timeout=30) as client:
            yield client
        tg.cancel_scope.cancel()


async def test_override_bodies_json_or_a_float_cannot_hold_and_past_365d_are_400() -> None:
    control = FakeControl()
    async with _daemon(control) as client:
        for duration in ("9" * 400, '"400d"', "1e300", '"\u0663m"'):
            response = await client.post(
                "/policies/chat/override",
                content=b'{"replicas": 2, "duration": ' + duration.encode() + b"}",
                headers=bearer(),
            )
            assert response.status_code == 400, (duration, response.text)
            assert response.json()["error"].startswith("duration: "), response.text
        for body in (b"[" * 30000 + b"]" * 30000, b'{"replicas": ' + b"9" * 5000 + b"}"):
            response = await client.post("/policies/chat/override", content=body, headers=bearer())
            assert response.status_code == 400, response.text  # the nesting was a 500
            assert response.json() == {"error": "body: not valid JSON"}
        ok = await client.post(
            "/policies/chat/override", json={"replicas": 2, "duration": "365d"}, headers=bearer()
        )
        assert ok.status_code == 200
    assert [c for c in control.calls if c[0] == "override"] == [
        ("override", "chat", 2, 365 * 86400.0)
    ]


async def test_history_limit_past_a_64_bit_integer_reads_everything() -> None:
    control = FakeControl()
    async with _daemon(control) as client:
        response = await client.get("/policies/chat/history", params={"limit": "9" * 40})
        assert response.status_code == 200, response.text
        for bad in ("\u00b2", "1.5", "-3"):
            refused = await client.get("/policies/chat/history", params={"limit": bad})
            assert refused.status_code == 400
            assert refused.json()["error"].startswith("limit: "), refused.text
    assert control.calls == [("history", "chat", None, None)]


async def test_no_route_and_wrong_method_are_json_errors() -> None:
    async with _daemon(FakeControl()) as client:
        missing = await client.get("/nowhere")
        assert missing.status_code == 404
        assert missing.json() == {"error": "no route GET /nowhere"}
        slashed = await client.post("/policies/a%2Fb/pause", headers=bearer())
        assert slashed.status_code == 404 and "error" in slashed.json()
        wrong = await client.put("/status")
        assert wrong.status_code == 405
        assert wrong.json() == {"error": "PUT /status: method not allowed (allowed: GET, HEAD)"}
        assert wrong.headers["allow"] == "GET, HEAD"


async def test_several_authorization_headers_are_refused() -> None:
    control = FakeControl()
    async with _daemon(control) as client:
        response = await client.post(
            "/policies/chat/pause",
            headers=[("Authorization", f"Bearer {TOKEN}"), ("Authorization", "Bearer other")],
        )
        assert response.status_code == 400
        assert response.json() == {"error": "send one Authorization header, not 2"}
    assert control.calls == []


async def test_a_client_gone_mid_body_ends_quietly() -> None:
    """The handler of an override whose client closed mid-body returns; before, starlette's
    ClientDisconnect escaped it (a traceback at error level in the daemon's log)."""
    ended: list[BaseException | None] = []
    app = create_http_app(FakeControl(), Metrics().registry, Secret(TOKEN))

    async def watched(scope: Any, receive: Any, send: Any) -> None:
        try:
            await app(scope, receive, send)
        except BaseException as exc:
            ended.append(exc)
            raise
        ended.append(None)

    async with anyio.create_task_group() as tg:
        host, port = await tg.start(serve_http, watched, "127.0.0.1:0")
        stream = await anyio.connect_tcp(host, port)
        await stream.send(
            b"POST /policies/chat/override HTTP/1.1\r\nHost: x\r\n"
            + f"Authorization: Bearer {TOKEN}\r\n".encode()
            + b'Content-Length: 100\r\n\r\n{"replicas":'
        )
        await stream.aclose()
        with anyio.fail_after(30):
            while not ended:
                await anyio.sleep(0.01)
        tg.cancel_scope.cancel()
    assert ended == [None]
    assert not isinstance(ended[0], ClientDisconnect)
