"""Admin control: what an operator (the HTTP admin API, `autoscaler pause` ...) and a gateway
may change in a running daemon: pause, resume, override, cancel-override, activate, and the
decision history they read.

Every change goes through the core (`core.with_paused`, `with_override` ...) under the
policy's lock, is saved with the lease epoch, and is refused on a standby (`NotLeaderError`,
HTTP 409): the leader owns the state. The policy is then evaluated soon, so the change shows
in its next decision.

Must not live here: the HTTP side (`http.py`), who leads (`leadership.py`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

import structlog

from autoscaler import core
from autoscaler.core.timefmt import iso
from autoscaler.runtime.history import HistoryBuffer
from autoscaler.runtime.protocols import NotLeaderError, UnknownPolicyError
from autoscaler.runtime.reads import SourcePool
from autoscaler.runtime.runner import PolicyRunner
from autoscaler.store.base import Store

log = structlog.get_logger("autoscaler.daemon")


class AdminHost(Protocol):
    """What admin control needs of the daemon."""

    runners: dict[str, PolicyRunner]
    sources: SourcePool
    store: Store | None
    history_buffer: HistoryBuffer | None
    on_gateway_demand: Callable[[str, Mapping[str, int]], None] | None

    def clock(self) -> float: ...

    def can_act(self) -> bool: ...

    def run_soon(self, name: str) -> None: ...

    async def tracked(self, work: Awaitable[object]) -> None: ...


def runner_of(host: AdminHost, name: str) -> PolicyRunner:
    runner = host.runners.get(name)
    if runner is None:
        raise UnknownPolicyError(name)
    return runner


class AdminControl:
    def __init__(self, host: AdminHost) -> None:
        self.host = host

    async def _change_state(self, name: str, change: Callable[[Any], Any]) -> dict[str, Any]:
        runner = runner_of(self.host, name)
        if not self.host.can_act():
            raise NotLeaderError(
                "this daemon is a standby (or stepping down): send admin requests to the leader"
            )
        async with runner.lock:
            if runner.state is None:
                await runner.load()
            runner.state = change(runner.state)
            await runner.save_state()
        self.host.run_soon(name)
        return runner.status()

    async def pause(self, policy: str) -> dict[str, Any]:
        log.info("admin_pause", policy=policy)
        return await self._change_state(policy, lambda s: core.with_paused(s, True))

    async def resume(self, policy: str) -> dict[str, Any]:
        log.info("admin_resume", policy=policy)
        now = self.host.clock()
        return await self._change_state(policy, lambda s: core.with_paused(s, False, now))

    async def override(self, policy: str, replicas: int, duration: float) -> dict[str, Any]:
        runner = runner_of(self.host, policy)
        if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 1:
            raise ValueError(f"replicas must be a whole number >= 1, got {replicas!r}")
        if replicas > runner.policy.replicas.max:
            raise ValueError(
                f"replicas {replicas} is above the policy's replicas.max "
                f"{runner.policy.replicas.max}"
            )
        if not duration > 0:
            raise ValueError(f"duration must be > 0 seconds, got {duration!r}")
        until = self.host.clock() + float(duration)
        log.info("admin_override", policy=policy, replicas=replicas, until=iso(until))
        return await self._change_state(policy, lambda s: core.with_override(s, replicas, until))

    async def cancel_override(self, policy: str) -> dict[str, Any]:
        log.info("admin_cancel_override", policy=policy)
        return await self._change_state(policy, lambda s: core.with_override(s, None))

    async def history(
        self, policy: str, since: float | None, limit: int | None
    ) -> list[dict[str, Any]]:
        store = self.host.store
        if store is None:
            raise ValueError("the store is not open yet")
        if self.host.history_buffer is not None:
            await self.host.history_buffer.flush()  # include the decisions of the last second
        entries = await store.decision_history(policy, since, limit)
        if not entries and policy not in self.host.runners:
            raise UnknownPolicyError(policy)
        return [{"t": e.t, "observation": e.observation, "decision": e.decision} for e in entries]

    async def activate(
        self, policy: str, origin: str | None = None, held: Mapping[str, int] | None = None
    ) -> dict[str, Any]:
        """A gateway holds requests for `policy`: evaluate it now instead of at its next
        interval, with the gateway's demand visible to its sources, so the policy's own
        activation rule (the core) decides. A standby notes the demand (it sees it if it
        becomes leader) and refuses with NotLeaderError (409)."""
        runner = runner_of(self.host, policy)
        if held and self.host.on_gateway_demand is not None:
            self.host.on_gateway_demand(origin or "gateway", held)
        if not self.host.can_act():
            raise NotLeaderError(
                "this daemon is a standby (or stepping down): send activation to the leader"
            )
        for key in runner.source_keys.values():
            self.host.sources.forget(key)
        await self.host.tracked(runner.evaluate(0.0))
        return runner.status()
