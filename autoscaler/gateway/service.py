"""`Gateway`: the edge around the pure hold queue. One per process (in the daemon, or
`autoscaler gateway`), serving the ASGI app of `app.py`.

Per model a `_Gate` holds the `HoldQueue`, the futures of held requests, the deployment's
route once known, and two tasks that run only while something is held: the watcher (looks
the deployment up every `poll_interval`, releases in arrival order once it can answer, and
refuses requests past their deadline) and the activation loop (asks the daemon at once, then
again every second until a leader accepts, and every `RENEW` seconds while still holding, so
a daemon that restarted or just became leader sees the demand).

A route is trusted until it fails: a connection error or a 404 makes the gate look the
deployment up again. Not ready (or a 404 from a deployment that has not answered yet: the
Nebius-style start-up) puts the request back in the queue at its arrival position.
Must not live here: the queue's rules (`hold.py`), header and error shapes (`upstream.py`).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog

from autoscaler.gateway import hold, upstream
from autoscaler.gateway.activation import ActivationError, Activator
from autoscaler.gateway.auth import ApiKeys
from autoscaler.gateway.client import UpstreamClient, UpstreamError, UpstreamResponse
from autoscaler.gateway.routes import ModelRoute, RouteResolver, RouteTable
from autoscaler.gateway.stats import Stats
from autoscaler.policy.model import GatewayConfig
from autoscaler.providers.base import InferenceRoute

log = structlog.get_logger("autoscaler.gateway")

Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]

RENEW = 2.0  # seconds between activation requests while still holding (after one accepted)
RETRY = 1.0  # seconds between activation attempts while no daemon accepts
ROUTE_MAX_AGE = 30.0  # a route in use is looked up again in the background after this
ERROR_BODY_LIMIT = 64 * 1024  # bytes of an upstream error body read to pass on
USAGE_BODY_LIMIT = 1 << 20  # bytes of a non-streamed body kept to read its usage


@dataclass
class _Gate:
    route: ModelRoute
    queue: hold.HoldQueue
    upstream: InferenceRoute | None = None
    resolved: bool = False  # looked up at least once
    warming: bool = False  # found ready, has not answered yet: a 404 is start-up
    checked_at: float = -math.inf
    waiters: dict[int, asyncio.Future[str]] = field(default_factory=dict)
    watcher: asyncio.Task[None] | None = None
    activating: asyncio.Task[None] | None = None
    refreshing: asyncio.Task[None] | None = None


@dataclass
class _Ticket:
    """One request; ends exactly once (the metric counts each outcome)."""

    rid: int
    model: str
    arrived: float
    deadline: float
    outcome: str | None = None
    first_byte: float | None = None


class Gateway:
    def __init__(
        self,
        config: GatewayConfig,
        table: RouteTable,
        resolver: RouteResolver,
        keys: ApiKeys,
        *,
        activator: Activator | None = None,
        stats: Stats | None = None,
        clock: Callable[[], float] = time.monotonic,
        origin: str | None = None,
    ) -> None:
        self.config = config
        self.table = table
        self.resolver = resolver
        self.keys = keys
        self.activator = activator
        self.stats = stats or Stats(table.models())
        self.clock = clock
        self.origin = origin or f"gateway-{uuid.uuid4().hex[:8]}"
        self._ids = itertools.count(1)
        self._gates: dict[str, _Gate] = {}
        self._closing = False
        self.client = UpstreamClient(read_timeout=config.upstream_timeout)

    # -- routing --------------------------------------------------------------------------

    def set_table(self, table: RouteTable) -> None:
        """Policies reloaded: new models route, removed ones answer 404 (held ones stay
        until they end)."""
        self.table = table
        for model, gate in self._gates.items():
            new = table.get(model)
            if new is not None and new != gate.route:
                gate.route = new
                gate.queue.bounds = new.bounds

    def gate(self, route: ModelRoute) -> _Gate:
        gate = self._gates.get(route.model)
        if gate is None:
            gate = self._gates[route.model] = _Gate(route, hold.HoldQueue(route.bounds))
            self.stats.model(route.model)
        return gate

    def held(self) -> dict[str, int]:
        return {model: gate.queue.held for model, gate in self._gates.items()}

    # -- one request ----------------------------------------------------------------------

    async def forward(
        self,
        route: ModelRoute,
        path: str,
        body: bytes,
        document: dict[str, Any],
        headers: list[tuple[bytes, bytes]],
        hold_for: float | None,
        receive: Receive,
        send: Send,
    ) -> None:
        now = self.clock()
        gate = self.gate(route)
        ticket = _Ticket(next(self._ids), route.model, now, now + route.bounds.max_hold)
        self.stats.arrived(route.model, now)
        verdict = gate.queue.arrive(ticket.rid, now, hold_for)
        if isinstance(verdict, hold.Held):
            ticket.deadline = verdict.deadline
        try:
            while True:
                if isinstance(verdict, hold.Refused):
                    await self._refuse(ticket, send, verdict.reason, verdict.retry_after)
                    return
                if isinstance(verdict, hold.Held):
                    released = await self._wait(gate, ticket, verdict, receive)
                    if released != "released":
                        if released == "cancelled":
                            self._end(ticket, "cancelled")
                        else:
                            retry = gate.queue.retry_after(self.clock())
                            await self._refuse(ticket, send, released, retry)
                        return
                target = gate.upstream
                if target is None:  # released by a route that has just been dropped
                    verdict = gate.queue.requeue(ticket.rid, ticket.deadline, self.clock())
                    continue
                again = await self._proxy(
                    gate, ticket, target, path, body, document, headers, send, receive
                )
                if not again:
                    return
                verdict = gate.queue.requeue(ticket.rid, ticket.deadline, self.clock())
        finally:
            if ticket.outcome is None:  # cancelled from outside (server stopping, client gone)
                gate.queue.leave(ticket.rid)
                self._end(ticket, "cancelled")

    async def _wait(
        self, gate: _Gate, ticket: _Ticket, verdict: hold.Held, receive: Receive
    ) -> str:
        """Until released, refused (timeout, shutdown) or the client goes away."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[str] = loop.create_future()
        gate.waiters[ticket.rid] = future
        started = self.clock()
        self.stats.held_changed(ticket.model, +1, started)
        if verdict.activate and gate.resolved:
            self._start_activation(gate, restart=True)
        self._start_watcher(gate)
        gone: asyncio.Future[Any] = asyncio.ensure_future(_disconnected(receive))
        either: set[asyncio.Future[Any]] = {future, gone}
        try:
            done, _ = await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
            if future in done:
                return future.result()
            gate.queue.leave(ticket.rid)
            return "cancelled"
        finally:
            gone.cancel()
            gate.waiters.pop(ticket.rid, None)
            now = self.clock()
            self.stats.held_changed(ticket.model, -1, now)
            self.stats.hold_ended(ticket.model, now - started)

    # -- the watcher and activation ---------------------------------------------------------

    def _start_watcher(self, gate: _Gate) -> None:
        if gate.watcher is None or gate.watcher.done():
            gate.watcher = asyncio.ensure_future(self._watch(gate))

    def _start_activation(self, gate: _Gate, restart: bool = False) -> None:
        """`restart`: the first held request of a new episode; a loop still sleeping from the
        last one must not delay it."""
        if self.activator is None:
            return
        if restart and gate.activating is not None and not gate.activating.done():
            gate.activating.cancel()
        if gate.activating is None or gate.activating.done():
            gate.activating = asyncio.ensure_future(self._activate(gate))

    async def _watch(self, gate: _Gate) -> None:
        poll = self.config.poll_interval
        while gate.queue.held and not self._closing:
            now = self.clock()
            for rid in gate.queue.expire(now):
                _settle(gate.waiters.get(rid), hold.HOLD_TIMEOUT)
            if not gate.queue.held:
                break
            found = await self._lookup(gate)
            if found is not None:
                for rid in gate.queue.mark_ready():
                    _settle(gate.waiters.get(rid), "released")
                break
            if gate.queue.held:
                self._start_activation(gate)
            deadline = gate.queue.next_deadline()
            wait = poll if deadline is None else max(0.0, min(poll, deadline - self.clock()))
            await asyncio.sleep(wait)

    async def _lookup(self, gate: _Gate) -> InferenceRoute | None:
        """Look the deployment up; a failed lookup counts as not ready (and is logged)."""
        try:
            found = await asyncio.wait_for(
                self.resolver.resolve(gate.route.policy, fresh=True), timeout=30.0
            )
        except Exception as exc:  # a provider outage must not end held requests
            log.warning("route_lookup_failed", model=gate.route.model, error=str(exc))
            found = None
        gate.resolved = True
        gate.checked_at = self.clock()
        if found is not None and found != gate.upstream:
            gate.warming = True
        gate.upstream = found
        if found is None:
            gate.queue.mark_not_ready()
        return found

    async def _activate(self, gate: _Gate) -> None:
        assert self.activator is not None
        accepted_at: float | None = None
        while gate.queue.held and not self._closing and not gate.queue.ready:
            model = gate.route.model
            try:
                held = {
                    m: g.queue.held
                    for m, g in self._gates.items()
                    if g.route.policy == gate.route.policy
                }
                await self.activator.activate(gate.route.policy, held)
            except ActivationError as exc:
                self.stats.activation(model, "refused")
                log.warning(
                    "activation_refused", model=model, policy=gate.route.policy, error=str(exc)
                )
                await asyncio.sleep(RETRY)
                continue
            except Exception as exc:
                self.stats.activation(model, "error")
                log.warning("activation_failed", model=model, error=f"{type(exc).__name__}: {exc}")
                await asyncio.sleep(RETRY)
                continue
            self.stats.activation(model, "accepted")
            if accepted_at is None:
                log.info("activation_accepted", model=model, policy=gate.route.policy)
            accepted_at = self.clock()
            await asyncio.sleep(RENEW)

    # -- proxying -------------------------------------------------------------------------

    async def _proxy(
        self,
        gate: _Gate,
        ticket: _Ticket,
        target: InferenceRoute,
        path: str,
        body: bytes,
        document: dict[str, Any],
        headers: list[tuple[bytes, bytes]],
        send: Send,
        receive: Receive,
    ) -> bool:
        """Send the request on. True: the deployment is not answering yet (hold again)."""
        model = ticket.model
        if target.model is not None and document.get("model") != target.model:
            body = json.dumps({**document, "model": target.model}).encode()
        url = target.base_url.rstrip("/") + path
        sent_headers = upstream.request_headers(headers, target.headers)
        self.stats.in_flight_changed(model, +1, self.clock())
        try:
            try:
                response = await self.client.request("POST", url, sent_headers, body)
            except UpstreamError as exc:
                if await self._not_answering(gate, target):
                    return True
                await self._refuse(ticket, send, hold.UPSTREAM_UNAVAILABLE, 1.0, str(exc))
                return False
            try:
                if response.status_code == 404 and await self._not_answering(gate, target):
                    return True
                gate.warming = False
                self._refresh_later(gate)
                if response.status_code >= 400:
                    await self._pass_error(ticket, response, send)
                else:
                    await self._pass_through(ticket, response, send, receive)
            finally:
                await response.aclose()
        finally:
            self.stats.in_flight_changed(model, -1, self.clock())
        return False

    async def _not_answering(self, gate: _Gate, target: InferenceRoute) -> bool:
        """The route failed (connection error or 404): is the deployment just not ready?"""
        if gate.upstream is target:
            found = await self._lookup(gate)
        else:
            found = gate.upstream
        if found is None:
            return True
        return gate.warming and found == target

    def _refresh_later(self, gate: _Gate) -> None:
        if self.clock() - gate.checked_at > ROUTE_MAX_AGE and (
            gate.refreshing is None or gate.refreshing.done()
        ):
            gate.checked_at = self.clock()
            gate.refreshing = asyncio.ensure_future(self._refresh(gate))

    async def _refresh(self, gate: _Gate) -> None:
        try:
            found = await self.resolver.resolve(gate.route.policy, fresh=False)
        except Exception:
            return
        if found is not None:
            gate.upstream = found

    async def _pass_error(self, ticket: _Ticket, response: UpstreamResponse, send: Send) -> None:
        try:
            data = await response.read(ERROR_BODY_LIMIT, self.config.upstream_timeout)
        except UpstreamError:
            data = b""
        payload = upstream.as_openai_error(response.status_code, data)
        extra = [
            (k, v)
            for k, v in upstream.response_headers(response.headers)
            if k.lower() in (b"retry-after", b"x-request-id")
        ]
        self._first_byte(ticket)
        await _respond(send, response.status_code, payload, extra)
        self._end(ticket, "answered")

    async def _pass_through(
        self, ticket: _Ticket, response: UpstreamResponse, send: Send, receive: Receive
    ) -> None:
        content_type = response.header(b"content-type") or b""
        is_sse = content_type.startswith(b"text/event-stream")
        gone: asyncio.Future[None] | None = None
        if is_sse:
            # A stream can run for minutes: when its client goes away, close the upstream
            # connection (vLLM then aborts the generation) instead of reading it to the end.
            gone = asyncio.ensure_future(_disconnected(receive))
            gone.add_done_callback(lambda f: None if f.cancelled() else response.abort())
        try:
            await self._stream_body(ticket, response, send, is_sse, gone)
        finally:
            if gone is not None:
                gone.cancel()

    async def _stream_body(
        self,
        ticket: _Ticket,
        response: UpstreamResponse,
        send: Send,
        is_sse: bool,
        gone: asyncio.Future[None] | None,
    ) -> None:
        headers = upstream.response_headers(response.headers)
        await send(
            {"type": "http.response.start", "status": response.status_code, "headers": headers}
        )
        sse = upstream.SseUsage() if is_sse else None
        kept = bytearray()
        try:
            async for chunk in response.chunks(self.config.upstream_timeout):
                if not chunk:
                    continue
                self._first_byte(ticket)
                if sse is not None:
                    sse.feed(chunk)
                elif len(kept) < USAGE_BODY_LIMIT:
                    kept += chunk
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except UpstreamError as exc:
            if gone is not None and gone.done():
                self._end(ticket, "cancelled")  # the client left; we closed the upstream
                return
            log.warning("upstream_broke_off", model=ticket.model, error=str(exc))
            self._end(ticket, "refused_" + hold.UPSTREAM_ERROR)
            if is_sse:
                await send(
                    {
                        "type": "http.response.body",
                        "body": upstream.sse_error_event(
                            "the deployment broke off the response", "upstream_error"
                        ),
                        "more_body": False,
                    }
                )
                return
            raise  # the server drops the connection: a truncated body must not look whole
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        usage = sse.usage if sse is not None else None
        if usage is None and sse is None and not response.header(b"content-encoding"):
            usage = upstream.json_usage(bytes(kept))
        if usage is not None:
            self.stats.tokens(ticket.model, usage[0], usage[1], self.clock())
        self._end(ticket, "answered")

    # -- endings --------------------------------------------------------------------------

    def _first_byte(self, ticket: _Ticket) -> None:
        if ticket.first_byte is None:
            now = self.clock()
            ticket.first_byte = now
            self.stats.first_byte(ticket.model, now - ticket.arrived, now)

    async def _refuse(
        self, ticket: _Ticket, send: Send, reason: str, retry_after: float, detail: str = ""
    ) -> None:
        message = REFUSALS.get(reason, reason).format(model=ticket.model, detail=detail)
        self._end(ticket, "refused_" + reason)
        await _respond(
            send,
            503,
            upstream.openai_error(503, message, code=reason),
            [(b"retry-after", str(max(1, math.ceil(retry_after))).encode())],
        )

    def _end(self, ticket: _Ticket, outcome: str) -> None:
        if ticket.outcome is not None:
            return  # the first ending counts (the finally of `forward` is a safety net)
        ticket.outcome = outcome
        now = self.clock()
        seconds = None if outcome == "cancelled" else now - ticket.arrived
        self.stats.ended(ticket.model, outcome, seconds, now)

    async def aclose(self) -> None:
        """Refuse what is held (shutting_down), stop the tasks, close the client."""
        self._closing = True
        for gate in self._gates.values():
            for rid in gate.queue.drain():
                _settle(gate.waiters.get(rid), hold.SHUTTING_DOWN)
            for task in (gate.watcher, gate.activating, gate.refreshing):
                if task is not None:
                    task.cancel()
        await asyncio.sleep(0)
        await self.client.aclose()
        if self.activator is not None:
            await self.activator.aclose()


REFUSALS = {
    hold.QUEUE_FULL: "model {model!r} is starting and already has the most requests it may "
    "hold waiting; retry later",
    hold.HOLD_TIMEOUT: "model {model!r} did not become ready within the hold timeout; retry later",
    hold.UPSTREAM_UNAVAILABLE: "model {model!r}: the deployment did not answer ({detail})",
    hold.SHUTTING_DOWN: "the gateway is shutting down; retry",
}


def _settle(future: asyncio.Future[str] | None, result: str) -> None:
    if future is not None and not future.done():
        future.set_result(result)


async def _disconnected(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


async def _respond(
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
