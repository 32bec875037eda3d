"""The inference route a runner remembers across restarts: where its deployment served when
last seen ready (deployment id, base URL, model; never a credential), saved with the state.

A deployment scaling (ready -> `initializing`) keeps serving on its route, which a provider
client knows only if it saw the deployment ready. A daemon restarted mid-scale has not: the
route saved before the restart is handed back to its client (`Provider.adopt_route`) for the
same deployment id, so its gateway, and the gateways that ask it (`GET
/policies/{name}/route`), keep routing instead of holding until the scale ends.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from autoscaler.providers.base import DeploymentInfo, Provider


@dataclass(frozen=True, slots=True)
class KnownRoute:
    """Where the deployment served when last seen ready, as saved with the state (`"route"`):
    handed back to the provider client (`adopt_route`) when, after a restart, the same
    deployment is seen scaling before it was seen ready."""

    deployment_id: str
    base_url: str
    model: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.deployment_id, "base_url": self.base_url, "model": self.model}

    @classmethod
    def from_stored(cls, stored: Mapping[str, Any] | None) -> KnownRoute | None:
        """The saved route, or None when there is none or it is not well formed (it only
        saves a held request's wait: never worth refusing a start for)."""
        raw = stored.get("route") if stored else None
        if not isinstance(raw, Mapping):
            return None
        dep, base, model = raw.get("id"), raw.get("base_url"), raw.get("model")
        if not (isinstance(dep, str) and dep and isinstance(base, str) and base):
            return None
        return cls(dep, base, model if isinstance(model, str) else None)


def keep_route(
    provider: Provider, known: KnownRoute | None, deployment: DeploymentInfo
) -> KnownRoute | None:
    """What to remember after observing `deployment`: the client's route when it is ready
    (the client keeps it too); for the same deployment seen scaling with no route in the
    client, the remembered one handed back to it; nothing once it failed or terminates."""
    status = deployment.status
    if status == "ready":
        found = provider.inference_route(deployment)
        if found is None:
            return known
        if known is not None and (known.deployment_id, known.base_url, known.model) == (
            deployment.id,
            found.base_url,
            found.model,
        ):
            return known  # unchanged: the state saves the same dict
        return KnownRoute(deployment.id, found.base_url, found.model)
    if status == "initializing":
        if (
            known is not None
            and known.deployment_id == deployment.id
            and provider.inference_route(deployment) is None
        ):
            provider.adopt_route(deployment, known.base_url, known.model)
        return known
    if status in ("failed", "terminating"):
        return None
    return known
