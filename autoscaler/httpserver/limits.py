"""What one HTTP server grants its clients (`ServerLimits`), the rate-limited logger its
refusals go through (`EventLimiter`), and the body cap (`limit_body`, ASGI middleware)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

import structlog

log = structlog.get_logger("autoscaler.http")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


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
    max_head: int = 64 * 1024
    """Bytes of a request head (request line and headers); past it: 431 and close. Bounds
    what a client can make the server hold before the app sees the request."""
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
        if self.max_head < 1024:
            raise ValueError(f"max_head must be >= 1024 bytes, got {self.max_head!r}")
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
