"""Asking the daemon to evaluate a policy now, because the gateway holds requests for it.

The gateway never decides to create or scale: it makes its demand visible (the held count per
model) and asks for an evaluation at once, and the daemon's core applies the policy's own
activation rule. In-process that is a direct call (`Daemon.activate`); from a separate gateway
process it is the daemon's token-protected admin API, `POST /policies/{name}/activate`, tried
on each configured daemon until the leader accepts (standbys refuse, after noting the demand
so that they see it if they become leader).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

import httpx

from autoscaler.secrets import Secret


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

    async def activate(self, policy: str, held: Mapping[str, int]) -> None:
        order = sorted(self.urls, key=lambda u: u != self._leader)
        headers = {"content-type": "application/json"}
        if self._token is not None:
            headers["authorization"] = f"Bearer {self._token.reveal()}"
        body = json.dumps({"origin": self.origin, "held": dict(held)}).encode()
        errors: list[str] = []
        for url in order:
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

    async def aclose(self) -> None:
        await self._client.aclose()


def _message(response: httpx.Response) -> str:
    try:
        return str(response.json().get("error", ""))[:200]
    except (ValueError, AttributeError):
        return response.text[:200]
