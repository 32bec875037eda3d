"""uvicorn's two HTTP/1.1 protocols with per-connection limits: the accept-side cap, the
header timer and the body timer (why: see the `autoscaler.httpserver` header)."""

from __future__ import annotations

import asyncio
import json
import sys
from collections import deque
from collections.abc import Callable
from typing import Any, Literal

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from autoscaler.httpserver.limits import EventLimiter, ServerLimits

ErrorBody = Callable[[int, str], bytes]
"""(status, message) -> the JSON body of a response the server writes itself (a refusal, a
timeout, a request it cannot parse), in the shape of the app it serves."""

_REASONS = {
    400: "Bad Request",
    408: "Request Timeout",
    431: "Request Header Fields Too Large",
    503: "Service Unavailable",
}


def json_error(status: int, message: str) -> bytes:
    """The daemon's error shape: `{"error": message}`."""
    return json.dumps({"error": message}).encode() + b"\n"


def _canned(render: ErrorBody, status: int, message: str) -> bytes:
    """A whole response that closes the connection, written straight to the transport."""
    body = render(status, message)
    head = (
        f"HTTP/1.1 {status} {_REASONS[status]}\r\ncontent-type: application/json\r\n"
        f"connection: close\r\ncontent-length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


LINGER = 5.0  # seconds a refused connection is drained before it is closed (see _refuse)


class _Limited:
    """The limits of one connection, written once for both of uvicorn's HTTP/1.1 protocols
    (a mixin placed before `H11Protocol` or `HttpToolsProtocol`). The protocol subclass keeps
    `_awaiting` where its parser is (`head`: a head is due or arriving, `body`: its body is
    due, `none`: nothing is due from the client) and says whether a response has started
    (`_responding`), so a 408 is never written into one or after one."""

    limits: ServerLimits
    events: EventLimiter
    render: ErrorBody
    # Set by uvicorn's protocol classes (declared for the type checker).
    loop: Any
    transport: Any
    flow: Any
    client: Any
    connections: Any

    _header_timer: asyncio.TimerHandle | None = None
    _body_timer: asyncio.TimerHandle | None = None
    _awaiting: str = "head"  # head | body | none: what the client still owes
    _refused = False
    _lingering: asyncio.TimerHandle | None = None  # answered and half-closed: see _refuse
    _deferred: bytes | None = None  # a refusal waiting for the answers before it: see _defer

    def connection_made(self, transport: Any) -> None:
        if len(self.connections) >= self.limits.max_connections:
            self._refused = True
            self.transport = transport
            self.events.warning(
                "http_connection_limit",
                max_connections=self.limits.max_connections,
                note="new connections get 503 until others close",
            )
            transport.write(_canned(self.render, 503, "too many connections"))
            transport.close()
            return
        super().connection_made(transport)  # type: ignore[misc]
        self._awaiting = "head"
        self._sync_timers()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_timers()
        if self._lingering is not None:
            self._lingering.cancel()
        if self._refused:
            return
        super().connection_lost(exc)  # type: ignore[misc]

    def data_received(self, data: bytes) -> None:
        if self._refused or self._lingering is not None or self._deferred is not None:
            return  # what a refused client still sends is dropped
        super().data_received(data)  # type: ignore[misc]
        if self.transport.is_closing():
            self._stop_timers()
            return
        self._parsed()
        if self._head_too_large(len(data)):
            self.events.warning("http_head_too_large", max_head=self.limits.max_head)
            message = f"request head larger than {self.limits.max_head} bytes"
            self._refuse(_canned(self.render, 431, message))
            return
        self._sync_timers()

    def _head_too_large(self, received: int) -> bool:
        """Whether the head arriving passed `max_head` (h11 checks it itself)."""
        return False

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a request its parser refused (called where it catches the
        parser's error): a JSON error naming what the parser found wrong, 431 for a head
        past `max_head`, instead of uvicorn's plain "Invalid HTTP request received."."""
        exc = sys.exc_info()[1]
        status = getattr(exc, "error_status_hint", 400)
        status = status if status in _REASONS else 400
        reason = str(exc).strip() if exc is not None else ""
        if exc is not None and exc.__context__ is not None and "callback" in reason:
            reason = str(exc.__context__) or type(exc.__context__).__name__  # uvicorn's check
        if status == 431:
            message = f"request head larger than {self.limits.max_head} bytes"
        else:
            message = f"invalid HTTP request: {(reason or msg)[:200]}"
        self._refuse(_canned(self.render, status, message))

    def _refuse(self, answer: bytes) -> None:
        """Answer a request the server will not serve, and end the connection so the client
        reads the answer. Behind pipelined requests still owed their answers: after those
        (`_defer`). With the refused request itself in the app (its body is what is wrong):
        the answer only if its response has not started, then close, as uvicorn does.
        Otherwise `_answer_and_linger`."""
        self._stop_timers()
        if self._answers_owed():
            self._defer(answer)
            return
        cycle: Any = getattr(self, "cycle", None)
        if cycle is not None and not cycle.response_complete:
            if not cycle.response_started:
                self.transport.write(answer)
            self.transport.close()
            return
        self._answer_and_linger(answer)

    def _answer_and_linger(self, answer: bytes) -> None:
        """Write the answer and half-close (FIN after it); drop what the client still sends,
        close once it closes or after LINGER seconds (closing at once with bytes unread makes
        the kernel reset the connection, and a reset can discard the answer before the
        client reads it)."""
        self.transport.write(answer)
        if self.transport.is_closing() or not self.transport.can_write_eof():
            self.transport.close()
            return
        self.transport.write_eof()
        self.flow.resume_reading()  # paused for a pipelined request: read (and drop) the rest
        self._lingering = self.loop.call_later(LINGER, self.transport.close)

    def _defer(self, answer: bytes) -> None:
        """HTTP/1.1 answers in request order: the refusal of a pipelined request waits until
        every request before it is answered (`on_response_complete`). Meanwhile no timer
        runs, reading is paused, and what the client sends (uvicorn resumes reading for the
        requests still served) is dropped."""
        self._stop_timers()
        self._deferred = answer
        self.flow.pause_reading()

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]
        if self.transport.is_closing() or self._lingering is not None:
            return
        if self._deferred is None:
            self._sync_timers()  # the next pipelined request may have begun: its timer now
        elif not self._answers_owed():
            answer, self._deferred = self._deferred, None
            self._answer_and_linger(answer)

    def _answers_owed(self) -> bool:
        """Whether requests before the one being refused still wait for their answers."""
        return False

    def _parsed(self) -> None:
        """After a read: move `_awaiting` where the parser is (if its events did not)."""

    def _responding(self) -> bool:
        raise NotImplementedError

    def _queued(self) -> bool:
        """Whether the request whose body is due waits behind another one's response (its
        body is not read until it runs, so its body timer starts then)."""
        return False

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
        elif self._awaiting == "body" and not self._queued():
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
        what = "headers" if awaiting == "head" else "body"
        answer = _canned(self.render, 408, f"request {what} too slow")
        if self._answers_owed():  # a pipelined head: after the answers before it
            self._defer(answer)
            return
        if not self._responding():
            self.transport.write(answer)
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
    pause), its end, the end of the body. It has no bound of its own on a head's size: the
    reads that fall wholly inside one head are counted (one in which a head began may hold
    the requests before it, so it is not), which bounds a head to `max_head` plus one read
    (256 KiB) and never refuses pipelined requests.

    It parses pipelined requests as they come (uvicorn queues them in `pipeline`), so a
    request can be refused while those before it are still owed their answers: `_open`
    keeps the requests whose answers are not complete, in order."""

    _head_bytes = 0
    _head_began = False  # during the read being handled
    _open: tuple[Any, ...] = ()  # RequestResponseCycles not answered yet, oldest first

    def _head_too_large(self, received: int) -> bool:
        began, self._head_began = self._head_began, False
        if self._awaiting != "head":
            self._head_bytes = 0
            return False
        self._head_bytes = 0 if began else self._head_bytes + received
        return self._head_bytes > self.limits.max_head

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._awaiting = "head"
        self._head_began = True

    def on_headers_complete(self) -> None:
        self._awaiting = "body"
        super().on_headers_complete()
        if self.cycle is not None:
            self._open = (*(c for c in self._open if not c.response_complete), self.cycle)

    def on_message_complete(self) -> None:
        self._awaiting = "none"
        super().on_message_complete()

    def _refused_cycle(self) -> Any:
        """The request being refused when it has a cycle (its body is what is wrong)."""
        return self.cycle if self._awaiting == "body" else None

    def _answers_owed(self) -> bool:
        refused = self._refused_cycle()
        return any(not c.response_complete for c in self._open if c is not refused)

    def _defer(self, answer: bytes) -> None:
        refused = self._refused_cycle()
        if refused is not None:  # queued behind the others: the refusal is its answer
            self.pipeline = deque(entry for entry in self.pipeline if entry[0] is not refused)
            self._open = tuple(c for c in self._open if c is not refused)
        super()._defer(answer)

    def _queued(self) -> bool:
        return bool(self.pipeline)  # the newest request is queued behind another one

    def _responding(self) -> bool:
        cycle = self.cycle
        if cycle is not None and self._awaiting == "body":
            return bool(cycle.response_started)
        return cycle is not None and not cycle.response_complete

    def connection_lost(self, exc: Exception | None) -> None:
        # uvicorn tells only the newest request; one before it (held, or waiting for its
        # deployment, with a pipelined request behind it) must learn that its client left.
        for cycle in self._open:
            if not cycle.response_complete:
                cycle.disconnected = True
                cycle.message_event.set()
        super().connection_lost(exc)


HttpProtocol = Literal["h11", "httptools"]
_PROTOCOLS: dict[str, type[_Limited]] = {"h11": _LimitedH11, "httptools": _LimitedHttpTools}


def protocol_class(
    limits: ServerLimits, events: EventLimiter, http: HttpProtocol, render: ErrorBody = json_error
) -> type:
    """The protocol class uvicorn instantiates per connection, bound to one server's limits
    and error shape."""
    base = _PROTOCOLS[http]
    attributes = {"limits": limits, "events": events, "render": staticmethod(render)}
    return type(base.__name__, (base,), attributes)
