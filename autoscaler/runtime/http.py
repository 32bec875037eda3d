"""The daemon's HTTP side: `/metrics`, `/healthz`, `/readyz`, `/status` and the admin endpoints.

`create_http_app` builds a Starlette app over a `DaemonControl` (the running daemon) and a
Prometheus registry; `serve_http` runs it with uvicorn inside the daemon's task group. The
daemon owns the process signals, so uvicorn is started without its own handlers and stops when
its task is cancelled. Nothing here decides or acts: admin requests are forwarded to the
control, which validates them against the policy.
"""

from __future__ import annotations

import hmac
import json
import math
import re
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import anyio
import structlog
import uvicorn
from anyio.abc import TaskStatus
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from autoscaler.runtime.control import DaemonControl, UnknownPolicyError
from autoscaler.runtime.metrics import TEXT_CONTENT_TYPE, MetricsRegistry
from autoscaler.secrets import Secret

log = structlog.get_logger("autoscaler.http")

DEFAULT_LISTEN = "127.0.0.1:9464"
SHUTDOWN_GRACE = 3.0  # seconds open connections get to finish when the daemon stops


class ListenAddressError(ValueError):
    """`http.listen` is not HOST:PORT, or the address cannot be bound."""


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


# --- override body ------------------------------------------------------------------------

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: Any) -> float:
    """Seconds from `300`, `"300"`, `"5m"`, `"1h30m"`; ValueError with the allowed forms."""
    if isinstance(value, bool):
        raise ValueError("must be a number of seconds or a duration like '5m'")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip()
        try:
            seconds = float(text)
        except ValueError:
            pos = 0
            seconds = 0.0
            for match in _DURATION_PART.finditer(text):
                if match.start() != pos:
                    break
                seconds += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
                pos = match.end()
            if pos != len(text) or not text:
                raise ValueError(
                    f"{value!r} is not a duration (use seconds or e.g. '90s', '5m', '1h30m')"
                ) from None
    else:
        raise ValueError("must be a number of seconds or a duration like '5m'")
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"{value!r} must be a positive duration")
    return seconds


def parse_override(body: Any) -> tuple[int, float]:
    """(replicas, duration seconds) from the override request body, or ValueError naming
    the field that is wrong."""
    if not isinstance(body, dict):
        raise ValueError('body: must be a JSON object like {"replicas": 3, "duration": "5m"}')
    unknown = sorted(set(body) - {"replicas", "duration"})
    if unknown:
        raise ValueError(f"{unknown[0]}: unknown field (allowed: replicas, duration)")
    if "replicas" not in body:
        raise ValueError("replicas: missing required field")
    replicas = body["replicas"]
    if isinstance(replicas, bool) or not isinstance(replicas, int):
        raise ValueError(f"replicas: {replicas!r} must be a whole number >= 0")
    if replicas < 0:
        raise ValueError(f"replicas: {replicas} must be >= 0")
    if "duration" not in body:
        raise ValueError("duration: missing required field")
    try:
        duration = parse_duration(body["duration"])
    except ValueError as exc:
        raise ValueError(f"duration: {exc}") from None
    return replicas, duration


def parse_activate(raw: bytes) -> tuple[str | None, dict[str, int]]:
    """(origin, held per model) from `{"origin": "gw-1", "held": {"chat": 3}}` (both
    optional), or ValueError naming the field."""
    if not raw.strip():
        return None, {}
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        raise ValueError("body: not valid JSON") from None
    if not isinstance(body, dict):
        raise ValueError('body: must be a JSON object like {"origin": "gw", "held": {"m": 1}}')
    origin = body.get("origin")
    if origin is not None and not isinstance(origin, str):
        raise ValueError("origin: must be a string")
    held = body.get("held", {})
    if not isinstance(held, dict) or not all(
        isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and v >= 0
        for k, v in held.items()
    ):
        raise ValueError("held: must map model names to whole numbers >= 0")
    return origin, held


# --- the app ------------------------------------------------------------------------------


def create_http_app(
    control: DaemonControl,
    registry: CollectorRegistry,
    admin_token: Secret | None,
    *,
    alive: Callable[[], bool] | None = None,
) -> Starlette:
    """The daemon's HTTP app. `alive` (optional) reports whether the daemon's loop still
    runs; without it `/healthz` answers 200 whenever the event loop can serve a request."""

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
        return json_response(body, status_code=200 if ready else 503)

    async def status(request: Request) -> Response:
        return json_response(control.status())

    def refuse_unauthorized(request: Request) -> Response | None:
        if admin_token is None:
            return _error(
                403,
                "admin endpoints are disabled: set http.admin_token in the daemon config",
            )
        header = request.headers.get("authorization", "")
        scheme, _, presented = header.partition(" ")
        expected = admin_token.reveal().encode()
        # Always run the comparison, so the time taken does not tell what was wrong.
        ok = hmac.compare_digest(presented.strip().encode(), expected)
        if scheme.lower() != "bearer" or not ok:
            log.warning(
                "admin_refused", path=request.url.path, client=_client(request), reason="token"
            )
            return Response(
                json.dumps({"error": "missing or wrong bearer token"}) + "\n",
                status_code=401,
                media_type="application/json",
                headers={"WWW-Authenticate": 'Bearer realm="autoscaler"'},
            )
        return None

    async def admin(request: Request) -> Response:
        refused = refuse_unauthorized(request)
        if refused is not None:
            return refused
        policy = request.path_params["name"]
        action = request.path_params["action"]
        try:
            if action == "pause":
                result = await control.pause(policy)
            elif action == "resume":
                result = await control.resume(policy)
            elif action == "override":
                try:
                    body = await request.json()
                except (json.JSONDecodeError, UnicodeDecodeError):
                    return _error(400, "body: not valid JSON")
                try:
                    replicas, duration = parse_override(body)
                except ValueError as exc:
                    return _error(400, str(exc))
                result = await control.override(policy, replicas, duration)
            elif action == "activate":
                try:
                    origin, held = parse_activate(await request.body())
                except ValueError as exc:
                    return _error(400, str(exc))
                result = await control.activate(policy, origin, held)
            else:
                return _error(404, f"unknown admin action {action!r}")
        except UnknownPolicyError:
            return _error(404, f"unknown policy {policy!r}")
        except ValueError as exc:
            return _error(400, str(exc))
        log.info("admin_action", policy=policy, action=action, client=_client(request))
        return json_response(result)

    routes = [
        Route("/metrics", metrics, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/status", status, methods=["GET"]),
        Route("/policies/{name}/{action:str}", admin, methods=["POST"]),
    ]
    return Starlette(routes=routes)


def _accepts_classic_text(accept: str) -> bool:
    """Prometheus servers list text/plain (with a lower q) beside OpenMetrics: any client
    that takes the classic format gets the fast writer."""
    return not accept.strip() or "text/plain" in accept or "*/*" in accept


def _client(request: Request) -> str | None:
    return request.client.host if request.client else None


# --- serving ------------------------------------------------------------------------------


def parse_listen(listen: str) -> tuple[str, int]:
    """("host", port) from `HOST:PORT` or `[IPv6]:PORT`; ListenAddressError otherwise."""
    text = listen.strip()
    if text.startswith("["):
        host, sep, port_text = text[1:].partition("]:")
    else:
        host, sep, port_text = text.rpartition(":")
    if not sep or not host or not port_text.isdigit() or int(port_text) > 65535:
        raise ListenAddressError(
            f"http.listen: {listen!r} must be HOST:PORT (e.g. {DEFAULT_LISTEN} or [::1]:9464)"
        )
    return host, int(port_text)


def bind_socket(listen: str) -> socket.socket:
    host, port = parse_listen(listen)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ListenAddressError(f"http.listen: cannot resolve {host!r}: {exc}") from exc
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise ListenAddressError(f"http.listen: cannot listen on {listen!r}: {exc}") from exc
    sock.setblocking(False)
    return sock


class _ServerWithoutSignals(uvicorn.Server):
    """uvicorn would take SIGINT/SIGTERM for itself; the daemon owns them."""

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve_http(
    app: Any,
    listen: str,
    *,
    task_status: TaskStatus[tuple[str, int]] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve `app` on `listen` until cancelled. `task_status.started((host, port))` is called
    once the socket is bound (port 0 picks a free port). Raises ListenAddressError when the
    address is malformed or taken. Needs the asyncio backend (uvicorn)."""
    sock = bind_socket(listen)
    bound = sock.getsockname()
    config = uvicorn.Config(
        app,
        lifespan="off",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=int(SHUTDOWN_GRACE),
    )
    config.load()
    server = _ServerWithoutSignals(config)
    server.lifespan = config.lifespan_class(config)
    try:
        await server.startup(sockets=[sock])
        log.info("http_listening", address=f"{bound[0]}:{bound[1]}")
        task_status.started((str(bound[0]), int(bound[1])))
        await server.main_loop()
    finally:
        # Cancelled (daemon stopping) or main_loop ended: close the listener and give open
        # connections a bounded moment, shielded so the cancellation cannot cut it short.
        with anyio.CancelScope(shield=True), anyio.move_on_after(SHUTDOWN_GRACE + 1):
            server.should_exit = True
            if getattr(server, "started", False):
                await server.shutdown(sockets=[sock])
        sock.close()
