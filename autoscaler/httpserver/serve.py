"""Listening and serving: parse and bind `listen`, lift the descriptor limit, quiet the
libraries' per-event logs, and run uvicorn under the limits until cancelled (`serve_asgi`)."""

from __future__ import annotations

import asyncio
import errno
import logging
import resource
import socket
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import anyio
import structlog
import uvicorn
from anyio.abc import TaskStatus

from autoscaler.httpserver.head import head_as_get
from autoscaler.httpserver.limits import EventLimiter, Scope, ServerLimits, limit_body
from autoscaler.httpserver.protocol import ErrorBody, HttpProtocol, json_error, protocol_class

log = structlog.get_logger("autoscaler.http")


class ListenAddressError(ValueError):
    """`listen` is not HOST:PORT, or the address cannot be bound."""


class _RateLimitFilter(logging.Filter):
    """A stdlib logging filter: each message template at most once per interval."""

    def __init__(self, limiter: EventLimiter) -> None:
        super().__init__()
        self.limiter = limiter

    def filter(self, record: logging.LogRecord) -> bool:
        suppressed = self.limiter.allow(f"{record.name}:{record.msg}")
        if suppressed is None:
            return False
        if suppressed:
            record.msg = f"{record.msg} ({suppressed} similar suppressed)"
        return True


_LIBRARY_LOGGERS = ("uvicorn.error", "asyncio")


@contextmanager
def _rate_limited_library_logs(limiter: EventLimiter) -> Iterator[None]:
    loggers = [logging.getLogger(name) for name in _LIBRARY_LOGGERS]
    flt = _RateLimitFilter(limiter)
    for logger in loggers:
        logger.addFilter(flt)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(flt)


_EXHAUSTION = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


@contextmanager
def _quiet_accept_errors(limiter: EventLimiter) -> Iterator[None]:
    """asyncio reports an accept that failed for lack of descriptors through the loop's
    exception handler, with a traceback, every time it retries (each second, per listener).
    Log it as one rate-limited line naming the errno; everything else goes on as before."""
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()

    def handler(lp: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if isinstance(exc, OSError) and exc.errno in _EXHAUSTION:
            limiter.warning(
                "http_accept_failed",
                error=f"{errno.errorcode.get(exc.errno or 0, exc.errno)}: {exc.strerror}",
                note="out of file descriptors: raise LimitNOFILE or lower max_connections",
            )
            return
        if previous is not None:
            previous(lp, context)
        else:
            lp.default_exception_handler(context)

    loop.set_exception_handler(handler)
    try:
        yield
    finally:
        loop.set_exception_handler(previous)


def raise_open_files_limit(wanted: int = 65536) -> tuple[int, int]:
    """Lift the soft RLIMIT_NOFILE towards `wanted` (never past the hard limit); returns
    (soft, hard) after. Python keeps the soft limit it inherits (often 1,024)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft, hard


def parse_listen(
    listen: str, *, example: str = "127.0.0.1:9464", key: str = "http.listen"
) -> tuple[str, int]:
    """("host", port) from `HOST:PORT` or `[IPv6]:PORT`; ListenAddressError otherwise, its
    message starting with the config `key` the address came from."""
    text = listen.strip()
    if text.startswith("["):
        host, sep, port_text = text[1:].partition("]:")
    else:
        host, sep, port_text = text.rpartition(":")
    if not sep or not host or not port_text.isdigit() or int(port_text) > 65535:
        raise ListenAddressError(
            f"{key}: {listen!r} must be HOST:PORT (e.g. {example} or [::1]:9464)"
        )
    return host, int(port_text)


def bind_socket(listen: str, backlog: int = 128, *, key: str = "http.listen") -> socket.socket:
    host, port = parse_listen(listen, key=key)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ListenAddressError(f"{key}: cannot resolve {host!r}: {exc}") from exc
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        raise ListenAddressError(f"{key}: cannot listen on {listen!r}: {exc}") from exc
    sock.setblocking(False)
    return sock


class _ServerWithoutSignals(uvicorn.Server):
    """uvicorn would take SIGINT/SIGTERM for itself; the caller's process owns them."""

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


SHUTDOWN_GRACE = 3.0  # seconds open connections get to finish when the server stops


def _uvicorn_config(
    app: Any, limits: ServerLimits, events: EventLimiter, http: HttpProtocol, render: ErrorBody
) -> uvicorn.Config:
    """uvicorn's settings for one server: our protocol class, no lifespan, no WebSocket, no
    logging config of its own, the limits' timeouts and caps."""
    return uvicorn.Config(
        app,
        http=protocol_class(limits, events, http, render),
        h11_max_incomplete_event_size=limits.max_head,
        lifespan="off",
        ws="none",  # no server here speaks WebSocket: an upgrade stays plain HTTP, under limits
        log_config=None,
        access_log=False,
        timeout_keep_alive=max(1, round(limits.keepalive_timeout)),
        # The accept-side cap refuses past max_connections before a head is read; uvicorn's
        # own check (at a complete head) then only backs it up.
        limit_concurrency=limits.max_connections + 1,
        backlog=limits.backlog,
        timeout_graceful_shutdown=int(SHUTDOWN_GRACE),
    )


def _capped(app: Any, limits: ServerLimits, events: EventLimiter) -> Any:
    """`app` behind the body cap (`limit_body`) when the limits set one."""
    if limits.max_body is None:
        return app
    max_body = limits.max_body

    def refused(scope: Scope) -> None:
        events.warning("http_body_too_large", path=scope.get("path"), max_body=max_body)

    return limit_body(app, max_body, refused)


async def serve_asgi(
    app: Any,
    listen: str,
    *,
    limits: ServerLimits = ServerLimits(),
    name: str = "http",
    key: str = "http.listen",
    http: HttpProtocol = "h11",
    on_stop: Callable[[], Awaitable[None]] | None = None,
    error_body: ErrorBody = json_error,
    task_status: TaskStatus[tuple[str, int]] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve `app` on `listen` under `limits` until cancelled. `task_status.started((host,
    port))` once the socket is bound (port 0 picks a free port). Raises ListenAddressError
    when the address is malformed or taken, naming the config `key` it came from. Needs the
    asyncio backend (uvicorn).

    `http`: uvicorn's protocol, h11 (pure Python) or httptools (C parser, several times the
    requests per second: the gateway's); the limits are the same on both. `on_stop` runs
    when the server stops, before open connections get their grace (the gateway refuses
    what it holds there, so those connections can finish at once). `error_body` shapes the
    responses the server writes itself (refusals, timeouts, requests it cannot parse). HEAD
    reaches `app` as a GET and is answered without a body (`head_as_get`)."""
    open_files, _ = raise_open_files_limit()
    sock = bind_socket(listen, limits.backlog, key=key)
    bound = sock.getsockname()
    events = EventLimiter(limits.log_interval)
    served = head_as_get(_capped(app, limits, events))
    config = _uvicorn_config(served, limits, events, http, error_body)
    config.load()
    server = _ServerWithoutSignals(config)
    server.lifespan = config.lifespan_class(config)
    with _quiet_accept_errors(events), _rate_limited_library_logs(events):
        try:
            await server.startup(sockets=[sock])
            log.info(
                "http_listening",
                server=name,
                address=f"{bound[0]}:{bound[1]}",
                protocol=http,
                max_connections=limits.max_connections,
                header_timeout=limits.header_timeout,
                open_files=open_files,
            )
            task_status.started((str(bound[0]), int(bound[1])))
            await server.main_loop()
        finally:
            # Cancelled (stopping) or main_loop ended: close the listener and give open
            # connections a bounded moment, shielded so the cancellation cannot cut it short.
            with anyio.CancelScope(shield=True), anyio.move_on_after(SHUTDOWN_GRACE + 2):
                if on_stop is not None:
                    with anyio.move_on_after(1):
                        await on_stop()
                server.should_exit = True
                if getattr(server, "started", False):
                    await server.shutdown(sockets=[sock])
            sock.close()
