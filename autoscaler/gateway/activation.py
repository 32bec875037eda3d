"""Asking the daemon to evaluate a policy now, because the gateway holds requests for it.

The gateway never decides to create or scale: it makes its demand visible (the held count per
model) and asks for an evaluation at once, and the daemon's core applies the policy's own
activation rule. In-process that is a direct call (`Daemon.activate`); from a separate gateway
process it is the daemon's token-protected admin API, `POST /policies/{name}/activate`, tried
on each configured daemon until the leader accepts (standbys refuse, after noting the demand
so that they see it if they become leader).

The same daemons, through the same client, also tell a separate gateway the route of a
deployment it never saw ready (`RemoteActivator.known_route`, `GET /policies/{name}/route`):
one that was scaling when the gateway started. Any daemon that answers will do, standbys too.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

import httpx
import structlog

from autoscaler.providers.base import SeenRoute
from autoscaler.secrets import Secret

log = structlog.get_logger("autoscaler.gateway")

ROUTE_TIMEOUT = 1.0
"""Seconds one daemon may take to tell a route (it answers from memory, in milliseconds): a
daemon that is down or cut off delays the lookup that asks by at most this, per daemon."""


class ActivationError(Exception):
    """No daemon accepted (all standbys, unreachable, or refusing); the gateway retries."""


class Activator(Protocol):
    async def activate(self, policy: str, held: Mapping[str, int]) -> None: ...

    async def aclose(self) -> None: ...


class InProcessActivator:
    """The daemon in this process: `activate(policy, origin, held)` (`Daemon.activate`)."""

    def __init__(
        self, activate: Callable[[str, str | None, Mapping[str, int]], Awaitable[Any]], origin: str
    ) -> None:
        self._activate = activate
        self.origin = origin

    async def activate(self, policy: str, held: Mapping[str, int]) -> None:
        try:
            await self._activate(policy, self.origin, dict(held))
        except (KeyError, ValueError) as exc:
            raise ActivationError(str(exc)) from exc

    async def aclose(self) -> None:
        return None


class RemoteActivator:
    """The daemons' admin API; the last one that accepted (the leader) is tried first."""

    def __init__(
        self,
        urls: Sequence[str],
        token: Secret | None,
        origin: str,
        *,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not urls:
            raise ValueError("a separate gateway needs gateway.daemons (daemon URLs)")
        self.urls = [u.rstrip("/") for u in urls]
        self.origin = origin
        self._token = token
        self._leader: str | None = None
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(timeout), transport=transport)

    def __repr__(self) -> str:
        return f"RemoteActivator({self.urls})"

    def _order(self) -> list[str]:
        """The daemons, the last one that accepted (the leader) first."""
        return sorted(self.urls, key=lambda u: u != self._leader)

    def _headers(self) -> dict[str, str]:
        if self._token is None:
            return {}
        return {"authorization": f"Bearer {self._token.reveal()}"}

    async def activate(self, policy: str, held: Mapping[str, int]) -> None:
        headers = {"content-type": "application/json", **self._headers()}
        body = json.dumps({"origin": self.origin, "held": dict(held)}).encode()
        errors: list[str] = []
        for url in self._order():
            try:
                response = await self._client.post(
                    f"{url}/policies/{policy}/activate", content=body, headers=headers
                )
            except httpx.HTTPError as exc:
                errors.append(f"{url}: {type(exc).__name__}")
                continue
            if response.status_code == 200:
                self._leader = url
                return
            errors.append(f"{url}: {response.status_code} {_message(response)}")
        self._leader = None
        raise ActivationError("; ".join(errors))

    async def known_route(self, policy: str) -> SeenRoute | None:
        """The route a daemon knows for `policy`'s deployment, asking each in turn (the
        leader first) until one tells it; None when none does (404: it never saw the
        deployment ready; down, slow past ROUTE_TIMEOUT, refusing, or a malformed answer)."""
        failures: list[str] = []
        for url in self._order():
            try:
                response = await self._client.get(
                    f"{url}/policies/{policy}/route",
                    headers=self._headers(),
                    timeout=ROUTE_TIMEOUT,
                )
            except httpx.HTTPError as exc:
                failures.append(f"{url}: {type(exc).__name__}")
                continue
            if response.status_code == 200:
                try:
                    known = SeenRoute.from_json(response.json())
                except ValueError:
                    known = None
                if known is not None:
                    return known
                failures.append(f"{url}: an answer that is not a route")
            elif response.status_code != 404:
                failures.append(f"{url}: {response.status_code} {_message(response)}")
        if failures:
            log.info("route_ask_failed", policy=policy, errors="; ".join(failures))
        return None

    async def aclose(self) -> None:
        await self._client.aclose()


def _message(response: httpx.Response) -> str:
    try:
        return str(response.json().get("error", ""))[:200]
    except (ValueError, AttributeError):
        return response.text[:200]
