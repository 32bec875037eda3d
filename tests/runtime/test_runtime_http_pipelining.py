"""Pipelined requests over real HTTP on both of uvicorn's protocols: answers go in request
order. A request the server refuses (its parser cannot read it, its head is too long or too
slow) behind requests still being served gets its 4xx after their answers, then the
connection closes; a pipelined request's body timer starts when it is served, not while it
waits behind a slow one. HEAD answers like GET without a body on the daemon's endpoints."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest

from autoscaler.httpserver import HttpProtocol, ServerLimits, json_error, serve_asgi
from autoscaler.runtime.http import create_http_app, serve_http
from autoscaler.runtime.metrics import Metrics
from autoscaler.secrets import Secret
from tests.rawhttp import (
    Response,
    assert_heads_match_gets,
    converse,
    heads_and_gets,
    responses,
)
from tests.runtime.test_runtime_http_app import TOKEN, FakeControl

pytestmark = pytest.mark.anyio
BOTH_PROTOCOLS = pytest.mark.parametrize("http", ["h11", "httptools"])
SPEEDS = pytest.mark.parametrize("slow", [False, True], ids=["fast", "slow"])


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Server:
    """An app answering `answer METHOD PATH BODY`; `/slow` answers only once the server has
    refused something on a connection (httptools reads pipelined requests ahead, so that is
    while /slow is in the app) or after a moment (h11 reads a request only once the one
    before it is answered); `/held` answers once `release` is set, without reading its body
    (a gateway waiting for its deployment)."""

    def __init__(self) -> None:
        self.refused = anyio.Event()
        self.release = anyio.Event()

    def error_body(self, status: int, message: str) -> bytes:
        self.refused.set()
        return json_error(status, message)

    async def app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = b""
        if scope["path"] == "/held":
            await self.release.wait()
        else:
            while True:
                message = await receive()
                body += message.get("body", b"")
                if not message.get("more_body"):
                    break
        if scope["path"] == "/slow":
            with anyio.move_on_after(2):
                await self.refused.wait()
        text = f"answer {scope['method']} {scope['path']} {body.decode()}".encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", str(len(text)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": text})


@asynccontextmanager
async def _serving(
    http: HttpProtocol, limits: ServerLimits = ServerLimits()
) -> AsyncIterator[tuple[Server, str, int]]:
    server = Server()
    async with anyio.create_task_group() as tg:
        host, port = await tg.start(
            lambda **kw: serve_asgi(
                server.app,
                "127.0.0.1:0",
                limits=limits,
                http=http,
                error_body=server.error_body,
                **kw,
            )
        )
        yield server, host, port
        tg.cancel_scope.cancel()


def _get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode()


def _shown(answers: list[Response]) -> list[tuple[int, str]]:
    """(status, body), the server's own refusals as their error message."""
    return [
        (a.status, a.body.decode() if a.status == 200 else json.loads(a.body)["error"])
        for a in answers
    ]


MALFORMED = {
    "bad header line": b"GET /three HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n",
    "bad chunked body": b"POST /three HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"zz\r\n",
    "bad request line": b"GET /three HTTP/1.1 extra\r\nHost: x\r\n\r\n",
}


@BOTH_PROTOCOLS
@SPEEDS
@pytest.mark.parametrize("bad", list(MALFORMED), ids=list(MALFORMED))
async def test_a_malformed_request_pipelined_behind_others_is_refused_after_their_answers(
    http: HttpProtocol, slow: bool, bad: str
) -> None:
    first = "/slow" if slow else "/one"
    async with _serving(http) as (_, host, port):
        answer = await converse(host, port, _get(first) + _get("/two") + MALFORMED[bad])
    found = responses(answer)
    shown = _shown(found)
    assert shown[:2] == [(200, f"answer GET {first} "), (200, "answer GET /two ")], answer
    assert [s for s, _ in shown[2:]] == [400], answer
    assert shown[2][1].startswith("invalid HTTP request: "), shown
    assert found[-1].headers[b"connection"] == b"close"
    assert answer.endswith(found[-1].body)  # nothing after the refusal: the server closed


@BOTH_PROTOCOLS
@SPEEDS
async def test_a_head_past_max_head_pipelined_behind_a_request_is_refused_after_its_answer(
    http: HttpProtocol, slow: bool
) -> None:
    first = "/slow" if slow else "/one"
    async with _serving(http, ServerLimits(max_head=4096)) as (server, host, port):
        head = _get(first) + b"GET /two HTTP/1.1\r\nHost: x\r\nX-Big: "
        answer = await converse(host, port, head, b"y" * 1024, stop=server.refused)
    found = responses(answer)
    assert _shown(found) == [
        (200, f"answer GET {first} "),
        (431, "request head larger than 4096 bytes"),
    ], answer[:600]


@BOTH_PROTOCOLS
async def test_a_pipelined_head_too_slow_is_refused_after_the_answer_before_it(
    http: HttpProtocol,
) -> None:
    """The header timer of a head that began behind a request being served: a 408 after
    that request's answer (before: the connection was closed, the answer lost)."""
    limits = ServerLimits(header_timeout=0.5)
    async with _serving(http, limits) as (server, host, port), anyio.create_task_group() as tg:

        async def release_once_refused() -> None:
            with anyio.move_on_after(3):  # h11 reads the head only after the answer
                await server.refused.wait()
            server.release.set()

        tg.start_soon(release_once_refused)
        answer = await converse(host, port, _get("/held") + b"GET /two HTTP/1.1\r\nHo")
    found = responses(answer)
    assert found[0].status == 200 and found[0].body == b"answer GET /held ", answer
    assert [a.status for a in found[1:]] in ([408], []), answer  # h11: the keep-alive ends it


@BOTH_PROTOCOLS
async def test_a_pipelined_body_waits_for_its_turn_without_timing_out(http: HttpProtocol) -> None:
    """A request whose body comes after its head, queued behind one that takes longer than
    the body timeout: its body is read once it is served (before: the timer closed the
    connection, losing the answer of the request before it)."""
    limits = ServerLimits(body_timeout=0.5)
    async with _serving(http, limits) as (server, host, port):
        stream = await anyio.connect_tcp(host, port)
        async with stream:
            post = b"POST /two HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n"
            await stream.send(_get("/held") + post)
            await anyio.sleep(1.5)  # past the body timeout: the server must still be there
            await stream.send(b"hello")
            server.release.set()
            answer = b""
            with anyio.fail_after(30):
                while len(found := responses(answer)) < 2:
                    answer += await stream.receive()
    assert _shown(found) == [(200, "answer GET /held "), (200, "answer POST /two hello")]


async def test_head_answers_like_get_without_a_body_on_the_daemons_get_routes() -> None:
    app = create_http_app(FakeControl(), Metrics().registry, Secret(TOKEN))
    auth = f"Authorization: Bearer {TOKEN}\r\n".encode()
    paths = (b"/status", b"/healthz", b"/readyz", b"/metrics", b"/policies/chat/history")
    paths += (b"/policies/chat/route", b"/nowhere")
    requests = heads_and_gets(paths, auth)
    wrong = b"HEAD /policies/chat/pause HTTP/1.1\r\nHost: x\r\n\r\n"
    last = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    async with anyio.create_task_group() as tg:
        host, port = await tg.start(serve_http, app, "127.0.0.1:0")
        answer = await converse(host, port, requests + wrong + last)
        tg.cancel_scope.cancel()
    found = responses(answer, bodiless={*range(0, 2 * len(paths), 2), 2 * len(paths)})
    statuses = [a.status for a in found]
    assert statuses == [200] * 2 * (len(paths) - 2) + [404] * 4 + [405, 200], answer
    assert found[-1].body == b'{"status":"ok"}\n'  # the last request parsed: no stray bytes
    assert_heads_match_gets(found, paths, varying=(b"/metrics",))
