"""`Gateway`: the edge around the pure hold queue. One per process (in the daemon, or
`autoscaler gateway`), serving the ASGI app of `app.py`.

Per model a `Gate` (`gate.py`) holds the `HoldQueue`, the futures of held requests, what the
lookups of the deployment said, and two tasks that run only while something is held: the
watcher (looks the deployment up every `poll_interval`, releases in arrival order once it can
answer, and refuses requests past their deadline) and the activation loop (asks the daemon at
once, then again every second until a leader accepts, and every `RENEW` seconds while still
holding, so a daemon that restarted or just became leader sees the demand).

A route is trusted until it fails: a connection error or a 404 makes the gate look the
deployment up again. Not ready, a new route (the deployment recreated since), or a 404 from a
deployment that has not answered yet (the Nebius-style start-up) puts the request back in the
queue at its arrival position.

A `failed` deployment the daemon will not recreate (`ModelRoute.refuse_failed`): what is held,
and what arrives within `poll_interval` of that lookup, is refused (`deployment_failed`); later
requests are held for a lookup, so a fixed deployment is routed again. One the daemon will
recreate is not ready (held until `max_hold`, as a failed lookup is).
Must not live here: the queue's rules (`hold.py`), one model's state (`gate.py`), header and
error shapes (`upstream.py`), how a request is answered (`answer.py`).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import time
import uuid
from collections.abc import Callable
from typing import Any

import structlog

from autoscaler.gateway import hold, upstream
from autoscaler.gateway.activation import ActivationError, Activator
from autoscaler.gateway.answer import Answers, Receive, Send, Ticket, disconnected
from autoscaler.gateway.auth import ApiKeys
from autoscaler.gateway.client import UpstreamClient, UpstreamError, UpstreamMalformed
from autoscaler.gateway.gate import Gate
from autoscaler.gateway.routes import ModelRoute, RouteResolver, RouteTable
from autoscaler.gateway.stats import Stats
from autoscaler.policy.model import GatewayConfig
from autoscaler.providers.base import InferenceRoute

log = structlog.get_logger("autoscaler.gateway")


RENEW = 2.0  # seconds between activation requests while still holding (after one accepted)
RETRY = 1.0  # seconds between activation attempts while no daemon accepts
ROUTE_MAX_AGE = 30.0  # a route in use is looked up again in the background after this
FAILED_RETRY = 30.0  # Retry-After of deployment_failed: someone has to fix it first


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
        self._gates: dict[str, Gate] = {}
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
                gate.settle(gate.queue.drain(), hold.MODEL_REMOVED)
            elif new != gate.route:
                gate.route = new
                gate.queue.bounds = new.bounds

    def gate(self, route: ModelRoute) -> Gate:
        gate = self._gates.get(route.model)
        if gate is None:
            gate = self._gates[route.model] = Gate(route, hold.HoldQueue(route.bounds))
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
                if isinstance(verdict, hold.Held) and (unheld := self._unheld(gate)):
                    gate.queue.leave(ticket.rid)
                    verdict = unheld
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
                            if released == hold.DEPLOYMENT_FAILED:
                                retry = FAILED_RETRY
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

    def _unheld(self, gate: Gate) -> hold.Refused | None:
        """Why a request must not be held (again) now: the gateway stops, so nothing will
        release it or time it out; a reload removed its model since it came; or its
        deployment was found failed for good within the last `poll_interval`."""
        if self._closing:
            return hold.Refused(hold.SHUTTING_DOWN, 1.0)
        if self.table.get(gate.route.model) is None:
            return hold.Refused(hold.MODEL_REMOVED, 1.0)
        if gate.refuses_failed(self.clock(), self.config.poll_interval):
            return hold.Refused(hold.DEPLOYMENT_FAILED, FAILED_RETRY)
        return None

    async def _wait(self, gate: Gate, ticket: Ticket, verdict: hold.Held, receive: Receive) -> str:
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

    def _start_watcher(self, gate: Gate) -> None:
        if gate.watcher is None or gate.watcher.done():
            gate.watcher = asyncio.ensure_future(self._watch(gate))

    def _start_activation(self, gate: Gate, restart: bool = False) -> None:
        """`restart`: the first held request of a new episode; a loop still sleeping from the
        last one must not delay it."""
        if self.activator is None:
            return
        if restart and gate.activating is not None and not gate.activating.done():
            gate.activating.cancel()
        if gate.activating is None or gate.activating.done():
            gate.activating = asyncio.ensure_future(self._activate(gate))

    async def _watch(self, gate: Gate) -> None:
        poll = self.config.poll_interval
        while gate.queue.held and not self._closing:
            now = self.clock()
            gate.settle(gate.queue.expire(now), hold.HOLD_TIMEOUT)
            if not gate.queue.held:
                break
            found = await self._lookup(gate)
            if found is not None:
                gate.settle(gate.queue.mark_ready(), "released")
                break
            if gate.refuses_failed(self.clock(), math.inf):  # found failed by this lookup
                gate.settle(gate.queue.drain(), hold.DEPLOYMENT_FAILED)
                break
            if gate.queue.held:
                self._start_activation(gate)
            deadline = gate.queue.next_deadline()
            wait = poll if deadline is None else max(0.0, min(poll, deadline - self.clock()))
            await asyncio.sleep(wait)

    async def _lookup(self, gate: Gate) -> InferenceRoute | None:
        """Look the deployment up: its route, or None (`gate.failed` says whether it failed);
        a failed lookup counts as not ready (and is logged), never as failed."""
        try:
            answer = await asyncio.wait_for(
                self.resolver.resolve(gate.route.policy, fresh=True), timeout=30.0
            )
        except Exception as exc:  # a provider outage must not end held requests
            log.warning("route_lookup_failed", model=gate.route.model, error=str(exc))
            return gate.looked_up(None, self.clock(), answered=False)
        found = gate.looked_up(answer, self.clock())
        if gate.failed is not None and not gate.failure_told:  # once per failure, not request
            gate.failure_told = True
            log.warning(
                "deployment_failed",
                model=gate.route.model,
                policy=gate.route.policy,
                deployment=gate.failed.deployment,
                status=gate.failed.status,
                requests="refused" if gate.route.refuse_failed else "held",
            )
        return found

    async def _activate(self, gate: Gate) -> None:
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
        gate: Gate,
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
        self.stats.in_flight_changed(model, +1, self.clock())
        # A client that goes away closes the upstream connection at once, answer begun or not
        # (vLLM then aborts the request): an LLM's whole answer can take minutes.
        gone = asyncio.ensure_future(disconnected(receive))
        try:
            try:
                sent_headers = upstream.request_headers(headers, target.headers)
                response = await self.client.request("POST", url, sent_headers, body, gone)
            except ValueError as exc:
                # A route no request can go on (a port out of range, a credential that is
                # not latin-1): refused with why, not a bare 500; holding would not mend it.
                # A UnicodeError's text can quote the credential: never passed on.
                why = "not latin-1" if isinstance(exc, UnicodeError) else str(exc)
                log.warning("upstream_route_invalid", model=model, error=why)
                detail = f"its route cannot be used: {why}"
                await self.answers.refuse(ticket, send, hold.UPSTREAM_UNAVAILABLE, 1.0, detail)
                return False
            except UpstreamError as exc:
                if self.answers.left(ticket, gone):
                    return False
                # One that answered garbage is answering: not starting, so not held again.
                answered = isinstance(exc, UpstreamMalformed)
                if not answered and await self._not_answering(gate, target):
                    return True
                await self.answers.refuse(ticket, send, hold.UPSTREAM_UNAVAILABLE, 1.0, str(exc))
                return False
            try:
                if response.status_code == 404 and await self._not_answering(gate, target):
                    return True
                gate.warming = False
                self._refresh_later(gate)
                if response.status_code >= 400:
                    await self.answers.pass_error(ticket, response, send, gone)
                else:
                    await self.answers.pass_through(ticket, response, send, gone)
            finally:
                await response.aclose()
        finally:
            gone.cancel()
            self.stats.in_flight_changed(model, -1, self.clock())
        return False

    async def _not_answering(self, gate: Gate, target: InferenceRoute) -> bool:
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

    def _refresh_later(self, gate: Gate) -> None:
        if self.clock() - gate.checked_at > ROUTE_MAX_AGE and (
            gate.refreshing is None or gate.refreshing.done()
        ):
            gate.checked_at = self.clock()
            gate.refreshing = asyncio.ensure_future(self._refresh(gate))

    async def _refresh(self, gate: Gate) -> None:
        try:
            found = await self.resolver.resolve(gate.route.policy, fresh=False)
        except Exception:
            return
        if isinstance(found, InferenceRoute):
            gate.upstream = found

    async def aclose(self) -> None:
        """Refuse what is held (shutting_down), stop the tasks, close the client."""
        self._closing = True
        for gate in self._gates.values():
            gate.settle(gate.queue.drain(), hold.SHUTTING_DOWN)
            for task in (gate.watcher, gate.activating, gate.refreshing):
                if task is not None:
                    task.cancel()
        await asyncio.sleep(0)
        await self.client.aclose()
        if self.activator is not None:
            await self.activator.aclose()
