"""Building `InferenceRoute`s: the provider-side half of the gateway's forwarding.

Every client's `inference_route` comes down to three provider-specific answers (which URL is
the OpenAI base, which model name to send, which credential) and this one shared rule: a
deployment with a base URL is routable when it is `ready`, or `initializing` while its provider
reports replicas serving (`ready_replicas >= 1`: a Nebius-style endpoint `updating`). The
credential is the profile's `inference.token`, resolved once when the client is built (a missing
variable or file is a start-up error, as for every other credential); the client's own key is
never forwarded. During a scale a deployment keeps its last route (see `InferenceRoutes`), and
a route another process saw can be adopted for it (`InferenceRoutes.adopt`).
"""

from __future__ import annotations

from types import MappingProxyType

from autoscaler.policy.model import ProviderProfile
from autoscaler.providers.base import DeploymentInfo, InferenceRoute
from autoscaler.secrets import Secret, resolve


def inference_token(profile: ProviderProfile, *, api_token_fallback: bool) -> Secret | None:
    """The key inference requests carry. `api_token_fallback`: the provider documents one
    bearer token for both its API and inference (NetMind, Nebius-style), so the profile's
    `token` serves when no `inference.token` is given. NeevCloud never falls back: its API
    access token is not an inference key (seed 001: inference takes `sk-nc-*` keys)."""
    if profile.inference is not None and profile.inference.token is not None:
        return resolve(profile.inference.token)
    if api_token_fallback and profile.token is not None:
        return resolve(profile.token)
    return None


class InferenceRoutes:
    """One client's routes: its inference credential, and the last route of each deployment it
    saw ready. A deployment that was ready and turns `initializing` is changing its replica count
    (a scale), not starting: its replicas keep serving where they served, although NeevCloud
    then reports no `endpoint_url` and Nebius-style says `updating`. So its last route stays
    valid until it is ready again (a fresh route) or fails, terminates or goes (None).

    A client that never saw the deployment ready (a separate gateway started mid-scale) has
    no last route: when the provider reports serving replicas (Nebius-style `ready_replicas`)
    that is enough; otherwise the gateway asks the daemons, whose clients record the route at
    each evaluation that sees the deployment ready, and `adopt`s their answer.

    Kept per deployment name, for the deployment id it was seen under: a deployment deleted
    and created again under its name (scale to zero and back) is a new id whose replicas are
    starting, not scaling, and its entry replaces the old one, so the table holds one entry
    per name however often deployments come and go. `forget` drops a deleted one's at once."""

    def __init__(self, profile: ProviderProfile, *, api_token_fallback: bool):
        self.token = inference_token(profile, api_token_fallback=api_token_fallback)
        self.configured_base = profile.inference.base_url if profile.inference else None
        self._last: dict[str, tuple[str, InferenceRoute]] = {}  # name -> (id, route)

    def route(
        self, info: DeploymentInfo, base_url: str | None, model: str | None = None
    ) -> InferenceRoute | None:
        """The route to `info` at `base_url`, or None when it is not routable."""
        serving = info.status == "ready" or (
            info.status == "initializing" and (info.ready_replicas or 0) >= 1
        )
        if serving and base_url:
            return self._keep(info, base_url, model)
        last = self._last.get(info.name)
        if last is not None and last[0] == info.id and info.status == "initializing":
            return last[1]
        if last is not None:
            del self._last[info.name]
        return None

    def adopt(
        self, info: DeploymentInfo, base_url: str, model: str | None
    ) -> InferenceRoute | None:
        """A route this client never saw, learned from a process that saw `info` ready (a
        separate gateway asks the daemons): while `info` is `initializing` it is scaling, its
        replicas serve there. Built with THIS client's credential (the other process never
        sends one) and kept as the last route for `info.id`, so the rules above apply from
        now on. None for any other status: a ready deployment has its own route, a failed,
        terminating or absent one serves nothing."""
        if info.status != "initializing" or not base_url:
            return None
        return self._keep(info, base_url, model)

    def _keep(self, info: DeploymentInfo, base_url: str, model: str | None) -> InferenceRoute:
        """The route, kept as `info`'s last. The one already kept when it is the same: the
        daemon records the route at every evaluation that sees the deployment ready, so
        that costs a lookup, not a new route."""
        base = base_url.rstrip("/")
        last = self._last.get(info.name)
        if last is not None and last[0] == info.id:
            kept = last[1]
            if kept.base_url == base and kept.model == model:
                return kept
        headers = {"Authorization": f"Bearer {self.token.reveal()}"} if self.token else {}
        found = InferenceRoute(base_url=base, headers=MappingProxyType(headers), model=model)
        self._last[info.name] = (info.id, found)
        return found

    def forget(self, deployment: DeploymentInfo) -> None:
        """`deployment` was deleted: its last route serves nothing any more."""
        last = self._last.get(deployment.name)
        if last is not None and last[0] == deployment.id:
            del self._last[deployment.name]

    def __len__(self) -> int:
        return len(self._last)
