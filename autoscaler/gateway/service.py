"""`Gateway`: the edge around the pure hold queue. One per process (in the daemon, or
`autoscaler gateway`), serving the ASGI app of `app.py`.

Per model a `_Gate` holds the `HoldQueue`, the futures of held requests, the deployment's
route once known, and two tasks that run only while something is held: the watcher (looks
the deployment up every `poll_interval`, releases in arrival order once it can answer, and
refuses requests past their deadline) and the activation loop (asks the daemon at once, then
again every second until a leader accepts, and every `RENEW` seconds while still holding, so
a daemon that restarted or just became leader sees the demand).

A route is trusted until it fails: a connection error or a 404 makes the gate look the
deployment up again. Not ready, a new route (the deployment recreated since), or a 404 from a
deployment that has not answered yet (the Nebius-style start-up) puts the request back in the
queue at its arrival position.
Must not live here: the queue's rules (`hold.py`), header and error shapes (`upstream.py`),
how a request is answered (`answer.py`).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from autoscaler.gateway import hold, upstream
from autoscaler.gateway.activation import ActivationError, Activator
from autoscaler.gateway.answer import Answers, Receive, Send, Ticket, disconnected
from autoscaler.gateway.auth import ApiKeys
from autoscaler.gateway.client import UpstreamClient, UpstreamError
from autoscaler.gateway.routes import ModelRoute, RouteResolver, RouteTable
from autoscaler.gateway.stats import Stats
from autoscaler.policy.model import GatewayConfig
from autoscaler.providers.base import InferenceRoute

log = structlog.get_logger("autoscaler.gateway")


RENEW = 2.0  # seconds between activation requests while still holding (after one accepted)
RETRY = 1.0  # seconds between activation attempts while no daemon accepts
ROUTE_MAX_AGE = 30.0  # a route in use is looked up again in the background after this


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
        self.answers = Answers(self.stats, clock, config.upstream_timeout)

    # -- routing --------------------------------------------------------------------------

    def set_table(self, table: RouteTable) -> None:
        """Policies reloaded: new models route, removed ones answer 404, those held too
        (nothing would bring their deployment back for them)."""
        self.table = table
        for model, gate in self._gates.items():
            new = table.get(model)
            if new is None:
                for rid in gate.queue.drain():
                    _settle(gate.waiters.get(rid), hold.MODEL_REMOVED)
            elif new != gate.route:
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
        # The client's bound applies also to a hold that begins later (sent on at once, then
        # put back in the queue because the deployment has gone since).
        ticket = Ticket(next(self._ids), route.model, now, now + route.bounds.hold_of(hold_for))
        self.stats.arrived(route.model, now)
        verdict = gate.queue.arrive(ticket.rid, now, hold_for)
        if isinstance(verdict, hold.Held):
            ticket.deadline = verdict.deadline
        try:
            while True:
                if isinstance(verdict, hold.Held) and (unheld := self._unheld(route)):
                    gate.queue.leave(ticket.rid)
                    verdict = hold.Refused(unheld, 1.0)
                if isinstance(verdict, hold.Refused):
                    await self.answers.refuse(ticket, send, verdict.reason, verdict.retry_after)
                    return
                if isinstance(verdict, hold.Held):
                    released = await self._wait(gate, ticket, verdict, receive)
                    if released != "released":
                        if released == "cancelled":
                            self.answers.end(ticket, "cancelled")
                        else:
                            retry = gate.queue.retry_after(self.clock())
                            await self.answers.refuse(ticket, send, released, retry)
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
        except asyncio.CancelledError:
            if not self._closing:
                raise
            # The server cancels what runs past its grace once the gateway closed: the
            # request ends here with the reason, and the task ends with it (re-raised, uvicorn
            # would log a traceback for an ordinary stop).
            await self.answers.stopped(ticket, send)
        finally:
            if ticket.outcome is None:  # cancelled from outside (server stopping, client gone)
                gate.queue.leave(ticket.rid)
                self.answers.end(ticket, "cancelled")

    def _unheld(self, route: ModelRoute) -> str | None:
        """Why a request must not be held (again) now: the gateway stops, so nothing will
        release it or time it out; or a reload removed its model since it came."""
        if self._closing:
            return hold.SHUTTING_DOWN
        return hold.MODEL_REMOVED if self.table.get(route.model) is None else None

    async def _wait(self, gate: _Gate, ticket: Ticket, verdict: hold.Held, receive: Receive) -> str:
        """Until released, refused (timeout, shutdown) or the client goes away."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[str] = loop.create_future()
        gate.waiters[ticket.rid] = future
        started = self.clock()
        self.stats.held_changed(ticket.model, +1, started)
        if verdict.activate and gate.resolved:
            self._start_activation(gate, restart=True)
        self._start_watcher(gate)
        gone: asyncio.Future[Any] = asyncio.ensure_future(disconnected(receive))
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
        ticket: Ticket,
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
                await self.answers.refuse(ticket, send, hold.UPSTREAM_UNAVAILABLE, 1.0, str(exc))
                return False
            try:
                if response.status_code == 404 and await self._not_answering(gate, target):
                    return True
                gate.warming = False
                self._refresh_later(gate)
                if response.status_code >= 400:
                    await self.answers.pass_error(ticket, response, send)
                else:
                    await self.answers.pass_through(ticket, response, send, receive)
            finally:
                await response.aclose()
        finally:
            self.stats.in_flight_changed(model, -1, self.clock())
        return False

    async def _not_answering(self, gate: _Gate, target: InferenceRoute) -> bool:
        """The route failed (connection error or 404): is the deployment just not ready, or
        answering elsewhere now? A deployment recreated under its name can have a new route
        (NetMind's endpoint URL and the Nebius-style routing key carry its id): the request
        goes there, not the old route's 404."""
        if gate.upstream is target:
            found = await self._lookup(gate)
        else:
            found = gate.upstream
        if found is None or found != target:
            return True
        return gate.warming

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


def _settle(future: asyncio.Future[str] | None, result: str) -> None:
    if future is not None and not future.done():
        future.set_result(result)
