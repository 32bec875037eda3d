"""uvicorn's two HTTP/1.1 protocols with per-connection limits: the accept-side cap, the
header timer and the body timer (why: see the `autoscaler.httpserver` header)."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from autoscaler.httpserver.limits import EventLimiter, ServerLimits

_REFUSED_503 = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"connection: close\r\ncontent-length: 21\r\n\r\ntoo many connections\n"
)
_TIMEOUT_408 = {
    "head": b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"connection: close\r\ncontent-length: 26\r\n\r\nrequest headers too slow.\n",
    "body": b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"connection: close\r\ncontent-length: 23\r\n\r\nrequest body too slow.\n",
}


class _Limited:
    """The limits of one connection, written once for both of uvicorn's HTTP/1.1 protocols
    (a mixin placed before `H11Protocol` or `HttpToolsProtocol`). The protocol subclass keeps
    `_awaiting` where its parser is (`head`: a head is due or arriving, `body`: its body is
    due, `none`: nothing is due from the client) and says whether a response has started
    (`_responding`), so a 408 is never written into one or after one."""

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
        """A header (`head`) or body (`body`) timer fired: log once per interval and close,
        with a 408 first unless a response is under way (or, for a body, was given already:
        an app may answer before reading it), so the client learns why."""
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
        if not self._responding():
            self.transport.write(_TIMEOUT_408[awaiting])
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
        state = self.conn.our_state
        if self._awaiting == "body":  # from the head until a response starts: SEND_RESPONSE
            return state is not h11.SEND_RESPONSE
        return state is not h11.IDLE


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
        cycle = self.cycle
        if cycle is not None and self._awaiting == "body":
            # The cycle is the request whose body is due; one queued behind a response
            # under way (pipelined) must not get a 408 written into that response.
            return cycle.response_started or bool(self.pipeline)
        return cycle is not None and not cycle.response_complete


HttpProtocol = Literal["h11", "httptools"]
_PROTOCOLS: dict[str, type[_Limited]] = {"h11": _LimitedH11, "httptools": _LimitedHttpTools}


def protocol_class(limits: ServerLimits, events: EventLimiter, http: HttpProtocol) -> type:
    """The protocol class uvicorn instantiates per connection, bound to one server's limits."""
    base = _PROTOCOLS[http]
    return type(base.__name__, (base,), {"limits": limits, "events": events})
