"""The gateway's ASGI app: the OpenAI-compatible endpoints, auth, body limits, and the
gateway's own `/metrics`, `/signals` and `/healthz`.

A raw ASGI callable rather than a framework router: five fixed paths, and every microsecond
of the proxy path counts (benchmarks/bench_gateway.py measured it). Inference requests:
bearer key -> body within `max_body` -> JSON with a string `model` the table routes ->
`Gateway.forward`. `/v1/models` lists the routed models. `/metrics` (Prometheus text),
`/signals?window=S` (JSON per model, what a daemon's `gateway` source sums) and `/healthz` need
no key, like the daemon's own `/metrics`; keep the listen address private.
"""

from __future__ import annotations

import json
import math
from typing import Any
from urllib.parse import parse_qs

import structlog
from prometheus_client.exposition import generate_latest

from autoscaler.gateway import shape
from autoscaler.gateway.answer import Receive, Send, respond
from autoscaler.gateway.service import Gateway
from autoscaler.gateway.upstream import HOLD_HEADER, openai_error

log = structlog.get_logger("autoscaler.gateway")

INFERENCE_PATHS = {
    "/v1/chat/completions": "/chat/completions",
    "/v1/completions": "/completions",
    "/v1/embeddings": "/embeddings",
}
TEXT = b"text/plain; version=0.0.4; charset=utf-8"


class _BodyTooLarge(Exception):
    pass


def create_app(gateway: Gateway) -> Any:
    """The gateway's ASGI app over `gateway`.

    Long because the routes are closures over one gateway (inference, /v1/models, /metrics,
    /signals), dispatched by one ASGI function with no router on the gateway's hot path.
    """
    max_body = gateway.config.max_body

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        suffix = INFERENCE_PATHS.get(path)
        if suffix is not None:
            if method != "POST":
                await _error(send, 405, f"{path} takes POST", "method_not_allowed")
                return
            await inference(scope, receive, send, suffix)
        elif path == "/v1/models" and method == "GET":
            if not await _authorized(gateway, scope, send):
                return
            data = [
                {"id": m, "object": "model", "created": 0, "owned_by": "autoscaler"}
                for m in gateway.table.models()
            ]
            await respond(send, 200, json.dumps({"object": "list", "data": data}).encode())
        elif path == "/metrics" and method == "GET":
            body = generate_latest(gateway.stats.registry)
            await respond(send, 200, body, [(b"content-type", TEXT)])
        elif path == "/signals" and method == "GET":
            await signals(scope, send)
        elif path == "/healthz" and method == "GET":
            await respond(send, 200, b'{"status":"ok"}')
        else:
            await _error(send, 404, f"no route {method} {path}", "not_found")

    async def inference(scope: dict[str, Any], receive: Receive, send: Send, suffix: str) -> None:
        if not await _authorized(gateway, scope, send):
            return
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        ok, hold_for = await _read_headers(headers, max_body, send)
        if not ok:
            return
        try:
            body = await _read_body(receive, max_body)
        except _BodyTooLarge:
            await _error(send, 413, f"request body over {max_body} bytes", "body_too_large")
            return
        except _Disconnected:
            return
        try:
            document = json.loads(body)
        except (ValueError, RecursionError):
            await _error(send, 400, "the request body is not valid JSON", "invalid_json")
            return
        model = document.get("model") if isinstance(document, dict) else None
        if not isinstance(model, str):
            await _error(send, 400, 'the request needs a string "model"', "missing_model")
            return
        wrong = shape.problem(suffix, document)
        if wrong is not None:
            await _error(send, 400, wrong[1], "invalid_request", param=wrong[0])
            return
        route = gateway.table.get(model)
        if route is None:
            await _error(
                send,
                404,
                f"model {model!r} is not served here; see GET /v1/models",
                "model_not_found",
            )
            return
        await gateway.forward(route, suffix, body, document, headers, hold_for, receive, send)

    async def signals(scope: dict[str, Any], send: Send) -> None:
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        try:
            window = float(query.get("window", ["60"])[0])
            if not (math.isfinite(window) and window > 0):
                raise ValueError
        except ValueError:
            await _error(send, 400, "window must be a positive number of seconds", "invalid")
            return
        now = gateway.clock()
        body = {
            "gateway": gateway.origin,
            "window": window,
            "models": gateway.stats.snapshot(window, now),
        }
        await respond(send, 200, json.dumps(body).encode())

    return app


class _Disconnected(Exception):
    pass


async def _read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _authorized(gateway: Gateway, scope: dict[str, Any], send: Send) -> bool:
    """Whether the request carries one good key; if not, the refusal is sent: 401, or 400
    for several Authorization headers (which one counts would depend on the proxy)."""
    presented = [v for n, v in scope["headers"] if n.lower() == b"authorization"]
    if len(presented) > 1:
        log.info("client_refused", reason="several Authorization headers")
        message = f"send one Authorization header, not {len(presented)}"
        await _error(send, 400, message, "duplicate_authorization")
        return False
    if presented and gateway.keys.check(presented[0]):
        return True
    log.info("client_refused", reason="api key missing or wrong")
    await _error(
        send,
        401,
        "missing or wrong API key (send Authorization: Bearer KEY)",
        "invalid_api_key",
        [(b"www-authenticate", b'Bearer realm="autoscaler-gateway"')],
    )
    return False


async def _read_headers(
    headers: list[tuple[bytes, bytes]], max_body: int, send: Send
) -> tuple[bool, float | None]:
    """(True, the request's `X-Scale-Up-Timeout`, None without one), or (False, None) once
    a refusal was sent: a declared body past `max_body` (413), a timeout that is not a
    positive number of seconds (400)."""
    hold_for: float | None = None
    for name, value in headers:
        lname = name.lower()
        if lname == b"content-length" and value.isdigit() and int(value) > max_body:
            await _error(send, 413, f"request body over {max_body} bytes", "body_too_large")
            return False, None
        if lname == HOLD_HEADER:
            try:
                hold_for = float(value)
                if not (math.isfinite(hold_for) and hold_for > 0):
                    raise ValueError
            except ValueError:
                message = "X-Scale-Up-Timeout must be a positive number of seconds"
                await _error(send, 400, message, "invalid_header")
                return False, None
    return True, hold_for


async def _error(
    send: Send,
    status: int,
    message: str,
    code: str,
    headers: list[tuple[bytes, bytes]] | None = None,
    *,
    param: str | None = None,
) -> None:
    await respond(send, status, openai_error(status, message, code, param), headers or [])


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
