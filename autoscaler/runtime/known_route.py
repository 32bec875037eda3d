"""The inference route a runner remembers across restarts: where its deployment served when
last seen ready (`SeenRoute`: deployment id and name, base URL, model; never a credential),
saved with the state (`stored.py`).

A deployment scaling (ready -> `initializing`) keeps serving on its route, which a provider
client knows only if it saw the deployment ready. A daemon restarted mid-scale has not: the
route saved before the restart is handed back to its client (`Provider.adopt_route`) for the
same deployment id, so its gateway, and the gateways that ask it (`GET
/policies/{name}/route`), keep routing instead of holding until the scale ends.
"""

from __future__ import annotations

from autoscaler.providers.base import DeploymentInfo, Provider, SeenRoute


def keep_route(
    provider: Provider, known: SeenRoute | None, deployment: DeploymentInfo
) -> SeenRoute | None:
    """What to remember after observing `deployment`: the client's route when it is ready
    (the client keeps it too); for the same deployment seen scaling with no route in the
    client, the remembered one handed back to it; nothing once it failed or terminates."""
    status = deployment.status
    if status == "ready":
        found = provider.inference_route(deployment)
        if found is None:
            return known
        seen = SeenRoute.of(deployment, found)
        return known if seen == known else seen  # the remembered one itself while unchanged
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
