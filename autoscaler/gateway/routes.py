"""Routing: model name -> the policy that serves it -> the deployment's live inference route.

`RouteTable` is built from the loaded policies (`gateway: {model: ...}`) and the gateway
section's default bounds; it is a plain value, rebuilt when policies reload.
The resolvers (`DaemonRoutes` and `ConfigRoutes`, runtime/gateway_wiring.py) look a policy's
deployment up at its provider (through the shared `DeploymentView` when the gateway runs in
the daemon) and ask the provider how to reach it (`Provider.inference_route`): None while it
is absent, initializing, or has no ready replica, and `Failed` when the provider reports it
`failed` (`lookup`): the gateway refuses requests for it at once when the daemon will not
recreate it (`ModelRoute.refuse_failed`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from autoscaler.gateway.hold import Bounds
from autoscaler.policy.model import GatewayConfig, Policy
from autoscaler.providers.base import DeploymentInfo, InferenceRoute, Provider


@dataclass(frozen=True, slots=True)
class ModelRoute:
    model: str
    policy: str  # the policy name (the daemon's activation target)
    bounds: Bounds
    refuse_failed: bool = False  # the daemon will not recreate a failed deployment


@dataclass(frozen=True, slots=True)
class RouteTable:
    by_model: dict[str, ModelRoute]

    @classmethod
    def build(cls, policies: Iterable[Policy], config: GatewayConfig) -> RouteTable:
        table: dict[str, ModelRoute] = {}
        for policy in policies:
            gw = policy.gateway
            if gw is None:
                continue
            bounds = Bounds(
                max_held=config.max_held if gw.max_held is None else gw.max_held,
                max_hold=config.max_hold if gw.max_hold is None else gw.max_hold,
            )
            # `report`, or `recreate` with nothing to create from (the core says it cannot).
            refuse = (
                policy.on_deployment_failure.action != "recreate"
                or policy.deployment.create is None
            )
            for model in gw.models:
                table.setdefault(model, ModelRoute(model, policy.name, bounds, refuse))
        return cls(table)

    def get(self, model: str) -> ModelRoute | None:
        return self.by_model.get(model)

    def models(self) -> list[str]:
        return sorted(self.by_model)


@dataclass(frozen=True, slots=True)
class Failed:
    """The provider reports the deployment `failed`: not absent, not starting."""

    deployment: str
    status: str  # the provider's own word


class RouteResolver(Protocol):
    async def resolve(self, policy: str, *, fresh: bool) -> InferenceRoute | Failed | None:
        """The live route of `policy`'s deployment, `Failed`, or None when it cannot answer
        now for any other reason (a failed lookup raises).
        `fresh`: a lookup younger than the last one (the gateway polls while holding)."""
        ...


def routable(info: DeploymentInfo | None, provider: Provider) -> InferenceRoute | None:
    """The route of a deployment that can answer now, else None. The provider decides from
    the status (a deployment changing its replica count keeps serving on its last route);
    a ready deployment that reports no ready replica cannot answer."""
    if info is None or (info.status == "ready" and info.ready_replicas == 0):
        return None
    return provider.inference_route(info)


def lookup(info: DeploymentInfo | None, provider: Provider) -> InferenceRoute | Failed | None:
    """`routable`, telling a `failed` deployment from one that is not ready (yet)."""
    route = routable(info, provider)
    if route is None and info is not None and info.status == "failed":
        return Failed(info.name, info.raw_status or info.status)
    return route
