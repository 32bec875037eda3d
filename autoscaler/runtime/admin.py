"""Admin control: what an operator (the HTTP admin API, `autoscaler pause` ...) and a gateway
may change in a running daemon: pause, resume, override, cancel-override, activate (and the
demand a gateway reports with it), and what they read: the decision history, and the
inference route the daemon knows for a policy's deployment (`route`, for a separate gateway
that started while the deployment was scaling and so never saw it ready).

Every change goes through the core (`core.with_paused`, `with_override` ...) under the
policy's lock, is saved with the lease epoch, and is refused on a standby (`NotLeaderError`,
HTTP 409): the leader owns the state. The policy is then evaluated soon, so the change shows
in its next decision.

Must not live here: the HTTP side (`http.py`), who leads (`leadership.py`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import structlog

from autoscaler import core
from autoscaler.core.timefmt import iso
from autoscaler.gateway.routes import routable
from autoscaler.providers.base import SeenRoute
from autoscaler.runtime.connections import Connections
from autoscaler.runtime.policyset import PolicySet
from autoscaler.runtime.protocols import NotLeaderError, UnknownPolicyError

log = structlog.get_logger("autoscaler.daemon")

GatewayDemand = Callable[[str, Mapping[str, int]], None]
"""`(origin, held)`: the counts a gateway holds, reported with its activation request."""


class AdminControl:
    """Over the daemon's policies and connections; `can_act` is the leadership's answer."""

    def __init__(
        self,
        policies: PolicySet,
        connections: Connections,
        *,
        can_act: Callable[[], bool],
        clock: Callable[[], float],
    ) -> None:
        self.policies = policies
        self.connections = connections
        self.can_act = can_act
        self.clock = clock
        # Held counts a gateway reports with its activation request (gateway_wiring sets the
        # process's SignalHub.report; `gateway` sources read it).
        self.on_gateway_demand: GatewayDemand | None = None

    async def _change_state(self, name: str, change: Callable[[Any], Any]) -> dict[str, Any]:
        runner = self.policies.runner(name)
        if not self.can_act():
            raise NotLeaderError(
                "this daemon is a standby (or stepping down): send admin requests to the leader"
            )
        async with runner.lock:
            if runner.state is None:
                await runner.load()
            runner.state = change(runner.state)
            await runner.save_state()
        self.policies.run_soon(name)
        return runner.status()

    async def pause(self, policy: str) -> dict[str, Any]:
        log.info("admin_pause", policy=policy)
        return await self._change_state(policy, lambda s: core.with_paused(s, True))

    async def resume(self, policy: str) -> dict[str, Any]:
        log.info("admin_resume", policy=policy)
        now = self.clock()
        return await self._change_state(policy, lambda s: core.with_paused(s, False, now))

    async def override(self, policy: str, replicas: int, duration: float) -> dict[str, Any]:
        runner = self.policies.runner(policy)
        if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 1:
            raise ValueError(f"replicas must be a whole number >= 1, got {replicas!r}")
        if replicas > runner.policy.replicas.max:
            raise ValueError(
                f"replicas {replicas} is above the policy's replicas.max "
                f"{runner.policy.replicas.max}"
            )
        if not duration > 0:
            raise ValueError(f"duration must be > 0 seconds, got {duration!r}")
        until = self.clock() + float(duration)
        log.info("admin_override", policy=policy, replicas=replicas, until=iso(until))
        return await self._change_state(policy, lambda s: core.with_override(s, replicas, until))

    async def cancel_override(self, policy: str) -> dict[str, Any]:
        log.info("admin_cancel_override", policy=policy)
        return await self._change_state(policy, lambda s: core.with_override(s, None))

    async def history(
        self, policy: str, since: float | None, limit: int | None
    ) -> list[dict[str, Any]]:
        store = self.connections.store
        if store is None:
            raise ValueError("the store is not open yet")
        if self.connections.history is not None:
            await self.connections.history.flush()  # include the decisions of the last second
        entries = await store.decision_history(policy, since, limit)
        if not entries and policy not in self.policies.runners:
            raise UnknownPolicyError(policy)
        return [{"t": e.t, "observation": e.observation, "decision": e.decision} for e in entries]

    def route(self, policy: str) -> dict[str, Any] | None:
        """The route this daemon's provider client knows for `policy`'s deployment as the
        daemon last saw it (same id): {"policy", "deployment": {"id", "name"}, "base_url",
        "model"}, never the headers (they hold the inference credential). None when there is
        none: no deployment seen, or one no daemon on this store saw ready (made by hand,
        or the deployment is starting). No request is made: asking must not spend the
        provider's rate limit. Standbys answer too: they observe every policy as the leader
        does (`PolicyRunner._observe`); one whose unfinished action the leader has not
        moved on yet they observe again once it has.
        UnknownPolicyError when `policy` is not loaded."""
        runner = self.policies.runner(policy)
        name = runner.policy.deployment.name
        info = runner.view.known(name) if runner.view is not None else None  # as last seen
        found = routable(info, runner.provider)
        if info is None or found is None:
            return None
        return {"policy": policy, **SeenRoute.of(info, found).to_json()}

    async def activate(
        self, policy: str, origin: str | None = None, held: Mapping[str, int] | None = None
    ) -> dict[str, Any]:
        """A gateway holds requests for `policy`: evaluate it now instead of at its next
        interval, with the gateway's demand visible to its sources, so the policy's own
        activation rule (the core) decides. A standby notes the demand (it sees it if it
        becomes leader) and refuses with NotLeaderError (409)."""
        runner = self.policies.runner(policy)
        if held and self.on_gateway_demand is not None:
            self.on_gateway_demand(origin or "gateway", held)
        if not self.can_act():
            raise NotLeaderError(
                "this daemon is a standby (or stepping down): send activation to the leader"
            )
        for key in runner.source_keys.values():
            self.connections.sources.forget(key)
        await self.policies.evaluate(runner)
        return runner.status()
