"""The daemon's HTTP side: `/metrics`, `/healthz`, `/readyz`, `/status` and the admin endpoints
(changes: pause, resume, override, activate; reads: `GET /policies/{name}/route`).

`create_http_app` builds a Starlette app over a `DaemonControl` (the running daemon) and a
Prometheus registry; `serve_http` runs it inside the daemon's task group through
`autoscaler.httpserver.serve_asgi` (header timeout, connection cap, body cap, rate-limited
exhaustion logs; the daemon owns the process signals). Nothing here decides or acts: admin
requests are forwarded to the control, which validates them against the policy.

Long because the routes are closures over one control, registry and token inside
`create_http_app`; split by route they would pass those three around for no reader's gain.
"""

from __future__ import annotations

import hmac
import json
import math
import time
from collections.abc import Callable
from typing import Any

import anyio
import structlog
from anyio.abc import TaskStatus
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from autoscaler.httpserver import (
    BodyTooLarge,
    EventLimiter,
    ListenAddressError,
    ServerLimits,
    bind_socket,
    parse_listen,
    serve_asgi,
)
from autoscaler.policy.model import HttpConfig
from autoscaler.runtime.admin_requests import (
    decode_body,
    parse_activate,
    parse_duration,
    parse_history_query,
    parse_override,
    read_capped,
)
from autoscaler.runtime.metrics import TEXT_CONTENT_TYPE, MetricsRegistry
from autoscaler.runtime.protocols import DaemonControl, NotLeaderError, UnknownPolicyError
from autoscaler.secrets import Secret, SecretError

log = structlog.get_logger("autoscaler.http")

DEFAULT_LISTEN = "127.0.0.1:9464"
ADMIN_MAX_BODY = 64 * 1024  # bytes; an override body is a few dozen
MIN_ADMIN_TOKEN = 16  # characters; shorter (or empty) tokens stop the daemon at start
REFUSAL_LOG_INTERVAL = 10.0  # seconds between two log lines about refused admin requests


# --- JSON helpers -------------------------------------------------------------------------


def _json_safe(value: Any) -> Any:
    """Replace what JSON cannot carry (NaN, infinities, tuples, odd objects) with plain values."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_json_safe(v) for v in value]
    if value is None or isinstance(value, str | int | bool):
        return value
    return str(value)


def json_response(content: Any, status_code: int = 200) -> Response:
    body = json.dumps(_json_safe(content), separators=(",", ":"), sort_keys=False)
    return Response(body + "\n", status_code=status_code, media_type="application/json")


def _error(status_code: int, message: str, **extra: Any) -> Response:
    return json_response({"error": message, **extra}, status_code=status_code)


# --- the app ------------------------------------------------------------------------------


def check_admin_token(token: Secret | None) -> Secret | None:
    """The token when it is long enough to guard the admin endpoints; SecretError naming
    where it came from (never its value) when it is empty, blank or shorter than
    MIN_ADMIN_TOKEN characters (after `resolve` stripped surrounding whitespace)."""
    if token is None:
        return None
    value = token.reveal()
    if len(value) < MIN_ADMIN_TOKEN:
        what = "is empty" if not value else f"has {len(value)} characters"
        raise SecretError(
            f"the admin token from {token.origin} {what}; it must have at least "
            f"{MIN_ADMIN_TOKEN} characters (e.g. `openssl rand -hex 24`)"
        )
    return token


def create_http_app(
    control: DaemonControl,
    registry: CollectorRegistry,
    admin_token: Secret | Callable[[], Secret | None] | None,
    *,
    alive: Callable[[], bool] | None = None,
) -> Starlette:
    """The daemon's HTTP app. `alive` (optional) reports whether the daemon's loop still
    runs; without it `/healthz` answers 200 whenever the event loop can serve a request.
    `admin_token` may be a callable: it is asked on each admin request (a token rotated on
    reload takes effect at once).

    Long because the routes are closures over one control, registry and token."""
    current_token = admin_token if callable(admin_token) else (lambda: admin_token)

    # MetricsRegistry: snapshot on the loop, render in a worker thread (a 10,000-policy
    # exposition takes about a second to write; evaluations must not wait for it).
    fast = registry if isinstance(registry, MetricsRegistry) else None

    async def metrics(request: Request) -> Response:
        accept = request.headers.get("accept", "")
        if fast is not None and _accepts_classic_text(accept):
            snapshot = fast.snapshot()
            body = await anyio.to_thread.run_sync(fast.render_snapshot, snapshot)
            return Response(body, media_type=TEXT_CONTENT_TYPE)
        encoder, content_type = choose_encoder(accept)
        return Response(encoder(registry), media_type=content_type)

    async def healthz(request: Request) -> Response:
        if alive is not None and not alive():
            return json_response({"status": "stopped"}, status_code=503)
        return json_response({"status": "ok"})

    async def readyz(request: Request) -> Response:
        try:
            ready, problems = await control.ready()
        except Exception as exc:  # a broken check is "not ready", never a 500
            ready, problems = False, [f"readiness check failed: {type(exc).__name__}: {exc}"]
        body: dict[str, Any] = {"ready": ready, "problems": list(problems)}
        try:
            body.update(control.leadership_status())
        except Exception as exc:
            body["leadership_error"] = f"{type(exc).__name__}: {exc}"
        unauthorized = getattr(control, "unauthorized", None)  # optional on a control
        if callable(unauthorized):
            refused = unauthorized()
            if refused:
                body["unauthorized"] = refused
        return json_response(body, status_code=200 if ready else 503)

    async def status(request: Request) -> Response:
        return json_response(control.status())

    refusals = EventLimiter(REFUSAL_LOG_INTERVAL)

    def refused(request: Request, status_code: int, message: str, **headers: str) -> Response:
        """A refused admin request: logged at most once per interval per status (with the
        count not logged), never with what the client presented."""
        refusals.warning(
            "admin_refused",
            key=f"admin_refused:{status_code}",
            status=status_code,
            path=request.url.path,
            client=_client(request),
            error=message,
        )
        return Response(
            json.dumps({"error": message}) + "\n",
            status_code=status_code,
            media_type="application/json",
            headers=headers or None,
        )

    def refuse_unauthorized(request: Request) -> Response | None:
        admin_token = current_token()
        if admin_token is None or not admin_token.reveal():
            return refused(
                request,
                403,
                "admin endpoints are disabled: set http.admin_token in the daemon config",
            )
        presented_headers = request.headers.getlist("authorization")
        if len(presented_headers) > 1:  # which one counts would depend on the proxy in front
            return refused(
                request, 400, f"send one Authorization header, not {len(presented_headers)}"
            )
        header = presented_headers[0] if presented_headers else ""
        scheme, _, presented = header.partition(" ")
        expected = admin_token.reveal().encode()
        # Always run the comparison, so the time taken does not tell what was wrong.
        ok = hmac.compare_digest(presented.strip().encode(), expected)
        if scheme.lower() != "bearer" or not ok:
            return refused(
                request,
                401,
                "missing or wrong bearer token",
                **{"WWW-Authenticate": 'Bearer realm="autoscaler"'},
            )
        return None

    async def admin(request: Request) -> Response:
        refusal = refuse_unauthorized(request)
        if refusal is not None:
            return refusal
        policy = request.path_params["name"]
        action = request.path_params["action"]
        try:
            if action == "pause":
                result = await control.pause(policy)
            elif action == "resume":
                result = await control.resume(policy)
            elif action == "override":
                try:
                    raw = await read_capped(request, ADMIN_MAX_BODY)
                except BodyTooLarge:
                    return refused(request, 413, f"body: larger than {ADMIN_MAX_BODY} bytes")
                try:
                    replicas, duration = parse_override(decode_body(raw))
                except ValueError as exc:
                    return refused(request, 400, str(exc))
                result = await control.override(policy, replicas, duration)
            elif action == "activate":
                try:
                    origin, held = parse_activate(await read_capped(request, ADMIN_MAX_BODY))
                except BodyTooLarge:
                    return refused(request, 413, f"body: larger than {ADMIN_MAX_BODY} bytes")
                except ValueError as exc:
                    return refused(request, 400, str(exc))
                result = await control.activate(policy, origin, held)
            else:
                return refused(request, 404, f"unknown admin action {action!r}")
        except UnknownPolicyError:
            return refused(request, 404, f"unknown policy {policy!r}")
        except ValueError as exc:
            return refused(request, 400, str(exc))
        except ClientDisconnect:  # gone mid-body: nobody reads this, and nothing was changed
            return _error(400, "body: the connection closed before the body ended")
        log.info("admin_action", policy=policy, action=action, client=_client(request))
        return json_response(result)

    async def cancel_override(request: Request) -> Response:
        refused = refuse_unauthorized(request)
        if refused is not None:
            return refused
        policy = request.path_params["name"]
        try:
            result = await control.cancel_override(policy)
        except UnknownPolicyError:
            return _error(404, f"unknown policy {policy!r}")
        log.info("admin_action", policy=policy, action="cancel-override", client=_client(request))
        return json_response(result)

    async def route(request: Request) -> Response:
        """What a separate gateway asks when it finds a deployment scaling that it never saw
        ready: the route this daemon knows (no credential in it), else 404."""
        refusal = refuse_unauthorized(request)
        if refusal is not None:
            return refusal
        policy = request.path_params["name"]
        try:
            known = control.route(policy)
        except UnknownPolicyError:
            return _error(404, f"unknown policy {policy!r}")
        if known is None:
            return _error(404, f"no route known for policy {policy!r}'s deployment")
        return json_response(known)

    async def history(request: Request) -> Response:
        policy = request.path_params["name"]
        try:
            since, limit = parse_history_query(request.query_params, time.time())
            entries = await control.history(policy, since, limit)
        except UnknownPolicyError:
            return _error(404, f"unknown policy {policy!r}")
        except ValueError as exc:
            return _error(400, str(exc))
        return json_response({"policy": policy, "entries": entries})

    routes = [
        Route("/metrics", metrics, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/status", status, methods=["GET"]),
        Route("/policies/{name}/history", history, methods=["GET"]),
        Route("/policies/{name}/route", route, methods=["GET"]),
        Route("/policies/{name}/cancel-override", cancel_override, methods=["POST"]),
        Route("/policies/{name}/override", cancel_override, methods=["DELETE"]),
        Route("/policies/{name}/{action:str}", admin, methods=["POST"]),
    ]
    handlers = {NotLeaderError: _not_leader, HTTPException: _no_route}
    return Starlette(routes=routes, exception_handlers=handlers)


async def _no_route(request: Request, exc: Exception) -> Response:
    """Starlette's own 404 (no route) and 405 (wrong method) as JSON errors naming the
    request, the 405 with the methods the path takes (also in `Allow`)."""
    status = getattr(exc, "status_code", 404)
    headers = dict(getattr(exc, "headers", None) or {})
    what = f"{request.method} {request.url.path}"
    if status == 405:
        allowed = ", ".join(sorted(m.strip() for m in headers.get("Allow", "").split(",")))
        headers["Allow"] = allowed  # starlette joins a set: in no fixed order
        message = f"{what}: method not allowed (allowed: {allowed})"
    elif status == 404:
        message = f"no route {what}"
    else:
        message = f"{what}: {getattr(exc, 'detail', exc)}"
    response = _error(status, message)
    response.headers.update(headers)
    return response


async def _not_leader(request: Request, exc: Exception) -> Response:
    """A standby refuses admin changes with 409: `autoscaler pause ...` then tries the next
    daemon it was given (`--url` may repeat)."""
    leader = getattr(exc, "leader", None)
    return _error(409, str(exc), role="standby", leader=leader)


def _accepts_classic_text(accept: str) -> bool:
    """Prometheus servers list text/plain (with a lower q) beside OpenMetrics: any client
    that takes the classic format gets the fast writer."""
    return not accept.strip() or "text/plain" in accept or "*/*" in accept


def _client(request: Request) -> str | None:
    return request.client.host if request.client else None


# --- serving ------------------------------------------------------------------------------


def server_limits(config: HttpConfig) -> ServerLimits:
    """The daemon's HTTP limits from `http:` (bodies are capped per route: admin only)."""
    return ServerLimits(
        header_timeout=config.header_timeout,
        max_connections=config.max_connections,
        max_body=ADMIN_MAX_BODY,
    )


async def serve_http(
    app: Any,
    listen: str,
    *,
    limits: ServerLimits | None = None,
    task_status: TaskStatus[tuple[str, int]] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the daemon's app on `listen` until cancelled (see `autoscaler.httpserver`)."""
    await serve_asgi(
        app, listen, limits=limits or ServerLimits(), name="daemon", task_status=task_status
    )


__all__ = [
    "ADMIN_MAX_BODY",
    "DEFAULT_LISTEN",
    "ListenAddressError",
    "bind_socket",
    "check_admin_token",
    "create_http_app",
    "parse_activate",
    "parse_duration",
    "parse_history_query",
    "parse_listen",
    "parse_override",
    "read_capped",
    "serve_http",
    "server_limits",
]
