"""Building `InferenceRoute`s: the provider-side half of the gateway's forwarding.

Every client's `inference_route` comes down to three provider-specific answers (which URL is
the OpenAI base, which model name to send, which credential) and this one shared rule: only a
`ready` deployment with a base URL is routable. The credential is the profile's
`inference.token`, resolved once when the client is built (a missing variable or file is a
start-up error, as for every other credential); the client's own key is never forwarded.
During a scale a deployment keeps its last route (see `InferenceRoutes`).
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
        if info.status == "ready" and base_url:
            headers = {"Authorization": f"Bearer {self.token.reveal()}"} if self.token else {}
            found = InferenceRoute(
                base_url=base_url.rstrip("/"), headers=MappingProxyType(headers), model=model
            )
            self._last[info.name] = (info.id, found)
            return found
        last = self._last.get(info.name)
        if last is not None and last[0] == info.id and info.status == "initializing":
            return last[1]
        if last is not None:
            del self._last[info.name]
        return None

    def forget(self, deployment: DeploymentInfo) -> None:
        """`deployment` was deleted: its last route serves nothing any more."""
        last = self._last.get(deployment.name)
        if last is not None and last[0] == deployment.id:
            del self._last[deployment.name]

    def __len__(self) -> int:
        return len(self._last)
