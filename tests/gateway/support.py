"""Real pieces for gateway tests: a small OpenAI-compatible upstream served on loopback, a
resolver whose routes a test sets (the deployment is ready or not), an activator that records
its calls, and `running(...)` to serve a gateway on a free port.

The upstream answers like vLLM: JSON with `usage`, or server-sent events (one chunk per token,
usage last when `stream_options.include_usage`). `mode` turns it into a deployment that
answers 404 (starting), 500, or breaks off a stream after its first chunk; `gate` lets a test
hold the stream after the first chunk (proving chunks are not buffered), `hold` a whole answer
(a slow LLM), noting in `left` a gateway that closed the connection meanwhile.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio

from autoscaler.gateway.auth import ApiKeys
from autoscaler.gateway.routes import RouteTable
from autoscaler.gateway.service import Gateway
from autoscaler.httpserver import ServerLimits
from autoscaler.policy.model import (
    Deployment,
    GatewayConfig,
    GatewaySource,
    Metric,
    Policy,
    PolicyGateway,
    Replicas,
    Target,
)
from autoscaler.providers.base import InferenceRoute
from autoscaler.runtime.gateway_wiring import serve_gateway
from autoscaler.runtime.http import serve_http
from autoscaler.secrets import Secret

CHAT = {"model": "chat", "messages": [{"role": "user", "content": "hello"}]}
"""A minimal chat request for the gateway's model `chat`."""

KEY = "sk-test-client-key"
PROVIDER_KEY = "sk-provider-inference-key"


@dataclass
class Upstream:
    mode: str = "ok"  # ok | 404 | 500 | break
    tokens: int = 4
    seen: list[dict[str, Any]] = field(default_factory=list)
    gate: asyncio.Event | None = None  # stream waits here after its first chunk
    # A whole (not streamed) answer waits here, its head sent first when `head_first`; the
    # gateway closing the connection meanwhile sets `left` (vLLM would abort the request).
    hold: asyncio.Event | None = None
    head_first: bool = False
    left: asyncio.Event = field(default_factory=asyncio.Event)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = await request_body(receive)
        document = json.loads(body) if body else {}
        self.seen.append(
            {
                "path": scope["path"],
                "headers": dict(scope["headers"]),
                "body": document,
                "client": scope.get("client"),  # which connection the gateway sent it on
            }
        )
        if self.mode in ("404", "500"):
            status = int(self.mode)
            await _json(send, status, {"detail": "Not Found" if status == 404 else "boom"})
            return
        usage = {
            "prompt_tokens": 7,
            "completion_tokens": self.tokens,
            "total_tokens": 7 + self.tokens,
        }
        if scope["path"].endswith("/embeddings"):
            await _json(
                send, 200, {"object": "list", "data": [{"embedding": [0.1]}], "usage": usage}
            )
            return
        if not document.get("stream"):
            answer = {
                "object": "chat.completion",
                "model": document.get("model"),
                "choices": [{"message": {"role": "assistant", "content": "hi " * self.tokens}}],
                "usage": usage,
            }
            if self.hold is not None:
                await self._whole_when_released(receive, send, answer)
                return
            await _json(send, 200, answer)
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        for i in range(self.tokens):
            chunk = {"choices": [{"delta": {"content": f"t{i}"}}], "usage": None}
            await send({"type": "http.response.body", "body": _event(chunk), "more_body": True})
            if i == 0 and self.gate is not None:
                await self.gate.wait()
            if i == 0 and self.mode == "break":
                raise RuntimeError("deployment crashed mid-stream")
        if (document.get("stream_options") or {}).get("include_usage"):
            await send(
                {
                    "type": "http.response.body",
                    "body": _event({"choices": [], "usage": usage}),
                    "more_body": True,
                }
            )
        await send({"type": "http.response.body", "body": b"data: [DONE]\n\n", "more_body": False})

    async def _whole_when_released(self, receive: Any, send: Any, answer: Any) -> None:
        assert self.hold is not None
        body = json.dumps(answer).encode()
        if self.head_first:
            head = [(b"content-type", b"application/json")]
            await send({"type": "http.response.start", "status": 200, "headers": head})
            await send({"type": "http.response.body", "body": body[:10], "more_body": True})
        released = asyncio.ensure_future(self.hold.wait())
        gone = asyncio.ensure_future(receive())  # the body is read: only http.disconnect comes
        done, _ = await asyncio.wait({released, gone}, return_when=asyncio.FIRST_COMPLETED)
        released.cancel()
        gone.cancel()
        if gone in done:
            self.left.set()
        elif self.head_first:
            await send({"type": "http.response.body", "body": body[10:]})
        else:
            await _json(send, 200, answer)


async def request_body(receive: Any) -> bytes:
    """The whole body of an ASGI request."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


def _event(document: Any) -> bytes:
    return b"data: " + json.dumps(document).encode() + b"\n\n"


async def _json(send: Any, status: int, document: Any) -> None:
    body = json.dumps(document).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})


@dataclass
class StaticRoutes:
    """policy -> route, or absent (None): what the provider would report."""

    routes: dict[str, InferenceRoute | None] = field(default_factory=dict)
    lookups: int = 0

    async def resolve(self, policy: str, *, fresh: bool) -> InferenceRoute | None:
        self.lookups += 1
        return self.routes.get(policy)


@dataclass
class RecordingActivator:
    calls: list[tuple[str, dict[str, int]]] = field(default_factory=list)
    on_call: Any = None

    async def activate(self, policy: str, held: Any) -> None:
        self.calls.append((policy, dict(held)))
        if self.on_call is not None:
            self.on_call(policy)

    async def aclose(self) -> None:
        return None


def policy(
    name: str, *models: str, max_held: int | None = None, max_hold: float | None = None
) -> Policy:
    return Policy(
        name=name,
        deployment=Deployment(provider="sim", name=f"{name}-dep", create={"model_id": "x"}),
        replicas=Replicas(min=0, max=2),
        metrics=(
            Metric("held", GatewaySource(signal="held", models=models), Target("value", 1.0)),
        ),
        gateway=PolicyGateway(models=models, max_held=max_held, max_hold=max_hold),
    )


def make_gateway(
    policies: list[Policy],
    routes: StaticRoutes,
    activator: Any = None,
    **config: Any,
) -> Gateway:
    gw = GatewayConfig(poll_interval=0.05, **config)
    return Gateway(
        gw,
        RouteTable.build(policies, gw),
        routes,
        ApiKeys([Secret(KEY), Secret("sk-second-key")]),
        activator=activator,
    )


@asynccontextmanager
async def serving(app: Any) -> AsyncIterator[str]:
    async with anyio.create_task_group() as tg:
        host, port = await tg.start(serve_http, app, "127.0.0.1:0")
        try:
            yield f"http://{host}:{port}"
        finally:
            tg.cancel_scope.cancel()


@asynccontextmanager
async def running(gateway: Gateway, limits: ServerLimits | None = None) -> AsyncIterator[str]:
    async with anyio.create_task_group() as tg:
        host, port = await tg.start(
            lambda task_status: serve_gateway(
                gateway, "127.0.0.1:0", limits=limits, task_status=task_status
            )
        )
        try:
            yield f"http://{host}:{port}"
        finally:
            tg.cancel_scope.cancel()


def route_to(base: str, prefix: str = "/v1", model: str | None = None) -> InferenceRoute:
    return InferenceRoute(
        base_url=base + prefix,
        headers={"Authorization": f"Bearer {PROVIDER_KEY}"},
        model=model,
    )


def address(url: str) -> tuple[str, int]:
    """(host, port) of a server's `http://host:port`, for a raw connection."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    return host, int(port)


def raw_chat(stream: bool = False) -> bytes:
    """A chat request for `chat` as raw HTTP/1.1, for a client no library stands between."""
    body = json.dumps({**CHAT, "stream": stream}).encode()
    return (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
        + f"Authorization: Bearer {KEY}\r\nContent-Type: application/json\r\n".encode()
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )


def sample(gateway: Gateway, name: str, **labels: str) -> float:
    value = gateway.stats.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


async def until(condition: Any, timeout: float = 30.0) -> None:
    with anyio.fail_after(timeout):
        while not condition():
            await anyio.sleep(0.01)


AUTH = {"Authorization": f"Bearer {KEY}"}
