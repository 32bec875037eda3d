"""Building `InferenceRoute`s: the provider-side half of the gateway's forwarding.

Every client's `inference_route` comes down to three provider-specific answers (which URL is
the OpenAI base, which model name to send, which credential) and this one shared rule: only a
`ready` deployment with a base URL is routable. The credential is the profile's
`inference.token`, resolved once when the client is built (a missing variable or file is a
start-up error, as for every other credential); the client's own key is never forwarded.
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


def configured_base(profile: ProviderProfile) -> str | None:
    """The profile's `inference.base_url`, if any."""
    return profile.inference.base_url if profile.inference is not None else None


def route(
    info: DeploymentInfo, base_url: str | None, token: Secret | None, model: str | None = None
) -> InferenceRoute | None:
    """The route to a ready deployment at `base_url`, or None when it is not routable."""
    if info.status != "ready" or not base_url:
        return None
    headers = {"Authorization": f"Bearer {token.reveal()}"} if token is not None else {}
    return InferenceRoute(
        base_url=base_url.rstrip("/"), headers=MappingProxyType(headers), model=model
    )
