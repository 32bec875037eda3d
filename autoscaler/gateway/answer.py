"""How the gateway answers one request: pass an upstream response through (streamed, with its
usage counted and a broken-off stream ended cleanly; a whole answer held back until complete,
so one broken off is refused instead of cut short), pass an upstream error on in OpenAI's
shape, or refuse with 503 and Retry-After; a client gone meanwhile (`gone`, which closed the
upstream connection) ends it `cancelled`; each request ends exactly once (`Ticket`), and
its ending is what the gateway's metrics count. `service.py` decides which answer; the
header and error shapes are `upstream.py`'s."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from autoscaler.gateway import hold, upstream
from autoscaler.gateway.client import UpstreamError, UpstreamResponse
from autoscaler.gateway.stats import Stats

log = structlog.get_logger("autoscaler.gateway")

Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]

ERROR_BODY_LIMIT = 64 * 1024  # bytes of an upstream error body read to pass on
WHOLE_BODY_LIMIT = 1 << 20  # bytes of a non-streamed body held back (and read for usage)


@dataclass
class Ticket:
    """One request; ends exactly once (the metric counts each outcome)."""

    rid: int
    model: str
    arrived: float
    deadline: float
    outcome: str | None = None
    first_byte: float | None = None
    started: str | None = None  # the response under way: "stream" (events) or "whole"


class Answers:
    """The answers of one gateway, counted in its `stats`."""

    def __init__(self, stats: Stats, clock: Callable[[], float], upstream_timeout: float) -> None:
        self.stats = stats
        self.clock = clock
        self.upstream_timeout = upstream_timeout

    async def pass_error(
        self, ticket: Ticket, response: UpstreamResponse, send: Send, gone: asyncio.Future[None]
    ) -> None:
        try:
            data = await response.read(ERROR_BODY_LIMIT, self.upstream_timeout)
        except UpstreamError:
            if self.left(ticket, gone):
                return
            data = b""
        payload = upstream.as_openai_error(response.status_code, data)
        extra = [
            (k, v)
            for k, v in upstream.response_headers(response.headers)
            if k.lower() in (b"retry-after", b"x-request-id")
        ]
        self.first_byte(ticket)
        await respond(send, response.status_code, payload, extra)
        self.end(ticket, "answered")

    async def pass_through(
        self, ticket: Ticket, response: UpstreamResponse, send: Send, gone: asyncio.Future[None]
    ) -> None:
        """`gone`: done once the client went away (the upstream connection is closed then)."""
        content_type = response.header(b"content-type") or b""
        is_sse = content_type.startswith(b"text/event-stream")
        headers = upstream.response_headers(response.headers)
        start = {"type": "http.response.start", "status": response.status_code, "headers": headers}
        # A whole (not streamed) answer is held back until complete, up to WHOLE_BODY_LIMIT:
        # one the deployment breaks off is then refused with a reason instead of a 200 cut
        # short. A stream, or a longer body, goes on as it comes.
        started = is_sse
        if started:
            ticket.started = "stream"
            await send(start)
        sse = upstream.SseUsage() if is_sse else None
        kept = bytearray()
        try:
            async for chunk in response.chunks(self.upstream_timeout):
                if not chunk:
                    continue
                self.first_byte(ticket)
                if sse is not None:
                    sse.feed(chunk)
                elif not started:
                    kept += chunk
                    if len(kept) <= WHOLE_BODY_LIMIT:
                        continue
                    ticket.started = "whole"
                    await send(start)
                    started, chunk = True, bytes(kept)
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except UpstreamError as exc:
            await self._broke_off(ticket, send, exc, sse is not None, started, gone)
            return
        if not started:
            headers.append((b"content-length", str(len(kept)).encode()))
            await send(start)
        await send({"type": "http.response.body", "body": b"" if started else bytes(kept)})
        usage = sse.usage if sse is not None else None
        if usage is None and sse is None and not response.header(b"content-encoding"):
            usage = upstream.json_usage(bytes(kept))
        if usage is not None:
            self.stats.tokens(ticket.model, usage[0], usage[1], self.clock())
        self.end(ticket, "answered")

    async def _broke_off(
        self,
        ticket: Ticket,
        send: Send,
        exc: UpstreamError,
        is_sse: bool,
        started: bool,
        gone: asyncio.Future[None],
    ) -> None:
        """The deployment's answer ended early (or the client left: we closed it)."""
        if self.left(ticket, gone):
            return
        log.warning("upstream_broke_off", model=ticket.model, error=str(exc))
        if not started:  # nothing of it reached the client: refuse with the reason
            await self.refuse(ticket, send, hold.UPSTREAM_ERROR, 1.0, str(exc))
            return
        self.end(ticket, "refused_" + hold.UPSTREAM_ERROR)
        if is_sse:
            event = upstream.sse_error_event(
                "the deployment broke off the response", "upstream_error"
            )
            await send({"type": "http.response.body", "body": event, "more_body": False})
            return
        raise exc  # the server drops the connection: a truncated body must not look whole

    def left(self, ticket: Ticket, gone: asyncio.Future[None]) -> bool:
        """Whether the client went away (`gone` done), which ends the request `cancelled`:
        the upstream error that stopped it is the connection we closed for that reason."""
        if not gone.done():
            return False
        self.end(ticket, "cancelled")
        return True

    def first_byte(self, ticket: Ticket) -> None:
        if ticket.first_byte is None:
            now = self.clock()
            ticket.first_byte = now
            self.stats.first_byte(ticket.model, now - ticket.arrived, now)

    async def refuse(
        self, ticket: Ticket, send: Send, reason: str, retry_after: float, detail: str = ""
    ) -> None:
        message = REFUSALS.get(reason, reason).format(model=ticket.model, detail=detail)
        self.end(ticket, "refused_" + reason)
        if reason == hold.MODEL_REMOVED:  # as for a request coming after the reload
            await respond(send, 404, upstream.openai_error(404, message, code=reason))
            return
        await respond(
            send,
            503,
            upstream.openai_error(503, message, code=reason),
            [(b"retry-after", str(max(1, math.ceil(retry_after))).encode())],
        )

    async def stopped(self, ticket: Ticket, send: Send) -> None:
        """The server stops and cancelled the request past its grace: end it with the reason
        where the client can still read one."""
        if ticket.outcome is not None:
            return
        if ticket.started is None:
            await self.refuse(ticket, send, hold.SHUTTING_DOWN, 1.0)
            return
        self.end(ticket, "refused_" + hold.SHUTTING_DOWN)
        if ticket.started == "stream":
            event = upstream.sse_error_event(REFUSALS[hold.SHUTTING_DOWN], hold.SHUTTING_DOWN)
            await send({"type": "http.response.body", "body": event, "more_body": False})

    def end(self, ticket: Ticket, outcome: str) -> None:
        if ticket.outcome is not None:
            return  # the first ending counts (the finally of `forward` is a safety net)
        ticket.outcome = outcome
        now = self.clock()
        seconds = None if outcome == "cancelled" else now - ticket.arrived
        self.stats.ended(ticket.model, outcome, seconds, now)


REFUSALS = {
    hold.QUEUE_FULL: "model {model!r} is starting and already has the most requests it may "
    "hold waiting; retry later",
    hold.HOLD_TIMEOUT: "model {model!r} did not become ready within the hold timeout; retry later",
    hold.UPSTREAM_UNAVAILABLE: "model {model!r}: the deployment did not answer ({detail})",
    hold.UPSTREAM_ERROR: "model {model!r}: the deployment broke off its answer ({detail})",
    hold.SHUTTING_DOWN: "the gateway is shutting down; retry",
    hold.MODEL_REMOVED: "model {model!r} is no longer served here (the configuration changed); "
    "see GET /v1/models",
    hold.DEPLOYMENT_FAILED: "model {model!r}: its deployment failed and the daemon will not "
    "recreate it (on_deployment_failure); retry once it has been fixed",
}


async def disconnected(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


async def respond(
    send: Send, status: int, body: bytes, headers: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
