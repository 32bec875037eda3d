"""Serving an ASGI app safely: bounded header time, bounded connections, bounded bodies, and
resource exhaustion logged once per interval. Used by every HTTP server the project runs
(the daemon's `/metrics` + admin, the gateway).

`serve_asgi(app, listen, limits=ServerLimits(...), http="h11"|"httptools", task_status=...)`
binds `listen`, runs uvicorn (without its signal handlers: the caller's process owns them)
until cancelled, and closes within a bounded grace. The daemon serves on h11, the gateway on
httptools (measured several times faster in benchmarks/bench_gateway.py).

Why protocol subclasses: uvicorn's protocols have a keep-alive timeout but no bound on how
long a request head may take, and their `limit_concurrency` only answers 503 once a full head
has arrived, so a client that sends its headers a byte at a time holds a file descriptor
forever. `_Limited` (one mixin over both protocol classes: `_LimitedH11`, `_LimitedHttpTools`)
adds, per connection:
- an accept-side cap: past `max_connections` open connections a new one gets a 503 and is
  closed at once, so hostile clients never hold more than `max_connections` descriptors;
- a header timer started when a request head begins (connection made, or the first byte after
  a keep-alive pause) and stopped when the head is complete; when it fires the connection
  gets a 408 and is closed;
- a body timer from the end of the head to the end of the body; when it fires the
  connection is closed.
A loop exception handler turns asyncio's `socket.accept() out of system resource` (EMFILE)
into one rate-limited line instead of a traceback per accept, and a logging filter does the
same for uvicorn's per-request warnings. `raise_open_files_limit` lifts the soft descriptor
limit to the hard one (systemd's `LimitNOFILE=` sets both).

Must not live here: routes, authentication, what the app serves.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import resource
import socket
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import anyio
import h11
import structlog
import uvicorn
from anyio.abc import TaskStatus
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = structlog.get_logger("autoscaler.http")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class ListenAddressError(ValueError):
    """`listen` is not HOST:PORT, or the address cannot be bound."""


@dataclass(frozen=True, slots=True)
class ServerLimits:
    """What one HTTP server grants its clients. Defaults suit a daemon's scrape, probe and
    admin traffic (a few clients, tiny requests)."""

    header_timeout: float = 10.0
    """Seconds a request head (request line and headers) may take from its first byte (or
    from the connection) to its end; past it: 408 and close. Stops slowloris clients."""
    body_timeout: float = 30.0
    """Seconds a request body may take once its head has arrived; past it the connection is
    closed (the app sees a disconnect). Stops clients that dribble a declared body."""
    keepalive_timeout: float = 5.0
    """Seconds an idle keep-alive connection stays open between requests."""
    max_connections: int = 256
    """Open connections at once; past it a new connection gets 503 and is closed before its
    head is read. Keep it well under the descriptor limit (LimitNOFILE), so outbound
    connections (providers, sources, the store) always find a descriptor."""
    max_body: int | None = 64 * 1024
    """Bytes of request body accepted (413 past it; Content-Length checked before reading,
    a streamed body counted while it arrives). None: no cap here (the app caps it)."""
    backlog: int = 128
    """Kernel accept queue length."""
    log_interval: float = 10.0
    """Seconds between two log lines about the same kind of refusal or exhaustion."""

    def __post_init__(self) -> None:
        for name in ("header_timeout", "body_timeout", "keepalive_timeout", "log_interval"):
            value = getattr(self, name)
            if not value > 0:
                raise ValueError(f"{name} must be > 0 seconds, got {value!r}")
        if self.max_connections < 1:
            raise ValueError(f"max_connections must be >= 1, got {self.max_connections!r}")
        if self.max_body is not None and self.max_body < 0:
            raise ValueError(f"max_body must be >= 0 or None, got {self.max_body!r}")


# --- rate-limited logging -------------------------------------------------------------------


class EventLimiter:
    """Logs an event at most once per `interval` per key; the next line carries the count of
    the events not logged meanwhile (`suppressed`). A flood costs one line per interval."""

    def __init__(
        self,
        interval: float,
        *,
        logger: Any = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval = interval
        self.logger = logger if logger is not None else log
        self.clock = clock
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}
        self.total: dict[str, int] = {}

    def allow(self, key: str) -> int | None:
        """None: do not log now (counted). Otherwise the number suppressed since the last."""
        self.total[key] = self.total.get(key, 0) + 1
        now = self.clock()
        last = self._last.get(key)
        if last is not None and now - last < self.interval:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return None
        self._last[key] = now
        return self._suppressed.pop(key, 0)

    def warning(self, event: str, *, key: str | None = None, **fields: Any) -> None:
        suppressed = self.allow(key or event)
        if suppressed is not None:
            self.logger.warning(event, suppressed=suppressed, **fields)


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


# --- the protocol ----------------------------------------------------------------------------

_REFUSED_503 = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"connection: close\r\ncontent-length: 21\r\n\r\ntoo many connections\n"
)
_TIMEOUT_408 = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"connection: close\r\ncontent-length: 26\r\n\r\nrequest headers too slow.\n"
)


class _Limited:
    """The limits of one connection, written once for both of uvicorn's HTTP/1.1 protocols
    (a mixin placed before `H11Protocol` or `HttpToolsProtocol`). The protocol subclass keeps
    `_awaiting` where its parser is (`head`: a head is due or arriving, `body`: its body is
    due, `none`: nothing is due from the client) and says whether a response has started
    (`_responding`), so a 408 is never written into one."""

    limits: ServerLimits
    events: EventLimiter
    # Set by uvicorn's protocol classes (declared for the type checker).
    loop: Any
    transport: Any
    client: Any
    connections: Any

    _header_timer: asyncio.TimerHandle | None = None
    _body_timer: asyncio.TimerHandle | None = None
    _awaiting: str = "head"  # head | body | none: what the client still owes
    _refused = False

    def connection_made(self, transport: Any) -> None:
        if len(self.connections) >= self.limits.max_connections:
            self._refused = True
            self.transport = transport
            self.events.warning(
                "http_connection_limit",
                max_connections=self.limits.max_connections,
                note="new connections get 503 until others close",
            )
            transport.write(_REFUSED_503)
            transport.close()
            return
        super().connection_made(transport)  # type: ignore[misc]
        self._awaiting = "head"
        self._sync_timers()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_timers()
        if self._refused:
            return
        super().connection_lost(exc)  # type: ignore[misc]

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        super().data_received(data)  # type: ignore[misc]
        if self.transport.is_closing():
            self._stop_timers()
        else:
            self._parsed()
            self._sync_timers()

    def _parsed(self) -> None:
        """After a read: move `_awaiting` where the parser is (if its events did not)."""

    def _responding(self) -> bool:
        raise NotImplementedError

    def _sync_timers(self) -> None:
        """The timer of what the client owes, armed once per phase and not reset by bytes.
        Synced after a whole read (not per parser event), so a request that arrives in one
        read arms no timer at all: the limits cost nothing on the fast path."""
        if self._awaiting == "head":
            self._stop_body_timer()
            if self._header_timer is None:
                self._header_timer = self.loop.call_later(
                    self.limits.header_timeout, self._timed_out, "head"
                )
        elif self._awaiting == "body":
            self._stop_header_timer()
            if self._body_timer is None:
                self._body_timer = self.loop.call_later(
                    self.limits.body_timeout, self._timed_out, "body"
                )
        else:
            self._stop_timers()

    def _stop_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _stop_body_timer(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _stop_timers(self) -> None:
        self._stop_header_timer()
        self._stop_body_timer()

    def _timed_out(self, awaiting: str) -> None:
        """A header (`head`) or body (`body`) timer fired: log once per interval and close;
        a head gets a 408 first unless a response is under way."""
        kind = "header" if awaiting == "head" else "body"
        setattr(self, f"_{kind}_timer", None)
        if self.transport.is_closing() or self._awaiting != awaiting:
            return
        seconds = getattr(self.limits, f"{kind}_timeout")
        self.events.warning(
            f"http_{kind}_timeout",
            client=self.client[0] if self.client else None,
            **{f"{kind}_timeout": seconds},
        )
        if awaiting == "head" and not self._responding():
            self.transport.write(_TIMEOUT_408)
        self.transport.close()


class _LimitedH11(_Limited, H11Protocol):
    """h11 reports no parser events: its state after each read says where the request is."""

    def _parsed(self) -> None:
        state = self.conn.their_state
        if state is h11.IDLE:
            self._awaiting = "head"  # a head has begun (or is still arriving)
        elif state is h11.SEND_BODY:
            self._awaiting = "body"
        else:
            self._awaiting = "none"

    def _responding(self) -> bool:
        return self.conn.our_state is not h11.IDLE


class _LimitedHttpTools(_Limited, HttpToolsProtocol):
    """httptools calls back as it parses: the first byte of a head (also after a keep-alive
    pause), its end, the end of the body."""

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._awaiting = "head"

    def on_headers_complete(self) -> None:
        self._awaiting = "body"
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._awaiting = "none"
        super().on_message_complete()

    def _responding(self) -> bool:
        return self.cycle is not None and not self.cycle.response_complete


HttpProtocol = Literal["h11", "httptools"]
_PROTOCOLS: dict[str, type[_Limited]] = {"h11": _LimitedH11, "httptools": _LimitedHttpTools}


def _protocol_class(limits: ServerLimits, events: EventLimiter, http: HttpProtocol) -> type:
    """The protocol class uvicorn instantiates per connection, bound to one server's limits."""
    base = _PROTOCOLS[http]
    return type(base.__name__, (base,), {"limits": limits, "events": events})


# --- body cap ----------------------------------------------------------------------------------


class BodyTooLarge(Exception):
    """A request body went past its cap while it was read."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"request body larger than {limit} bytes")
        self.limit = limit


def _too_large(limit: int) -> list[Message]:
    body = f'{{"error":"request body larger than {limit} bytes"}}\n'.encode()
    return [
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        },
        {"type": "http.response.body", "body": body},
    ]


def limit_body(app: ASGIApp, max_body: int, on_refused: Callable[[Scope], None]) -> ASGIApp:
    """ASGI middleware: a request whose Content-Length is past `max_body` gets 413 without
    the app running; a body streamed past it makes `receive` raise BodyTooLarge, answered
    413 when the app has not started its response."""

    async def limited(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = max_body + 1
                if declared > max_body:
                    on_refused(scope)
                    for message in _too_large(max_body):
                        await send(message)
                    return
        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > max_body:
                    raise BodyTooLarge(max_body)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            on_refused(scope)
            if started:
                raise
            for message in _too_large(max_body):
                await send(message)

    return limited


# --- listening and serving ---------------------------------------------------------------------


def parse_listen(listen: str, *, example: str = "127.0.0.1:9464") -> tuple[str, int]:
    """("host", port) from `HOST:PORT` or `[IPv6]:PORT`; ListenAddressError otherwise."""
    text = listen.strip()
    if text.startswith("["):
        host, sep, port_text = text[1:].partition("]:")
    else:
        host, sep, port_text = text.rpartition(":")
    if not sep or not host or not port_text.isdigit() or int(port_text) > 65535:
        raise ListenAddressError(
            f"http.listen: {listen!r} must be HOST:PORT (e.g. {example} or [::1]:9464)"
        )
    return host, int(port_text)


def bind_socket(listen: str, backlog: int = 128) -> socket.socket:
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
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        raise ListenAddressError(f"http.listen: cannot listen on {listen!r}: {exc}") from exc
    sock.setblocking(False)
    return sock


class _ServerWithoutSignals(uvicorn.Server):
    """uvicorn would take SIGINT/SIGTERM for itself; the caller's process owns them."""

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


SHUTDOWN_GRACE = 3.0  # seconds open connections get to finish when the server stops


async def serve_asgi(
    app: Any,
    listen: str,
    *,
    limits: ServerLimits = ServerLimits(),
    name: str = "http",
    http: HttpProtocol = "h11",
    on_stop: Callable[[], Awaitable[None]] | None = None,
    task_status: TaskStatus[tuple[str, int]] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve `app` on `listen` under `limits` until cancelled. `task_status.started((host,
    port))` once the socket is bound (port 0 picks a free port). Raises ListenAddressError
    when the address is malformed or taken. Needs the asyncio backend (uvicorn).

    `http`: uvicorn's protocol, h11 (pure Python) or httptools (C parser, several times the
    requests per second: the gateway's); the limits are the same on both. `on_stop` runs
    when the server stops, before open connections get their grace (the gateway refuses
    what it holds there, so those connections can finish at once)."""
    open_files, _ = raise_open_files_limit()
    sock = bind_socket(listen, limits.backlog)
    bound = sock.getsockname()
    events = EventLimiter(limits.log_interval)
    if limits.max_body is not None:
        max_body = limits.max_body

        def refused(scope: Scope) -> None:
            events.warning("http_body_too_large", path=scope.get("path"), max_body=max_body)

        app = limit_body(app, max_body, refused)
    config = uvicorn.Config(
        app,
        http=_protocol_class(limits, events, http),
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
