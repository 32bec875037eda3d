"""Building a provider client from a profile: the one place that knows every provider type.

Credentials are resolved here (`autoscaler.secrets.resolve`): a profile's `token`, or its
`login` (console credentials exchanged for an access token). Errors name the profile and what
is missing; no credential value ever appears in them.
"""

from __future__ import annotations

import random
import time

import anyio
import httpx

from autoscaler.policy.model import ProviderProfile
from autoscaler.providers.base import Provider
from autoscaler.providers.common import BaseProvider
from autoscaler.providers.http import Auth, LoginToken, OnRequest, ProviderHttp, StaticToken
from autoscaler.providers.retry import Clock, RetryPolicy, Sleep
from autoscaler.secrets import Secret, resolve

PROVIDER_TYPES = ("neevcloud", "netmind", "nebius")


class ProviderConfigError(ValueError):
    """A profile cannot be turned into a client (unknown type, missing ids or credentials)."""


def _auth(profile: ProviderProfile) -> Auth:
    if profile.token is not None:
        ref = profile.token
        token = resolve(ref)
        assert token is not None
        return StaticToken(token, reread=lambda: resolve(ref))
    if profile.login is not None:
        if profile.type != "neevcloud":
            raise ProviderConfigError(
                f"provider {profile.name!r}: login is only supported for neevcloud profiles"
            )
        username = resolve(profile.login.username)
        password = resolve(profile.login.password)
        assert username is not None and password is not None
        # A login URL that is only a path (`/api/v1/auth/login`) is on the API's host.
        url = str(httpx.URL(profile.base_url).join(profile.login.url))
        return LoginToken(url, username, password)
    raise ProviderConfigError(f"provider {profile.name!r}: needs a token or a login")


def build_provider(
    profile: ProviderProfile,
    *,
    on_request: OnRequest | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    retry: RetryPolicy | None = None,
    sleep: Sleep = anyio.sleep,
    clock: Clock = time.monotonic,
    rng: random.Random | None = None,
) -> Provider:
    """A client for `profile`. `transport` (e.g. `httpx.ASGITransport(app=...)`) replaces the
    network; `sleep`/`clock` are for tests that must not wait for real.
    Raises ProviderConfigError, or `autoscaler.secrets.SecretError` for a missing credential."""
    from autoscaler.providers.nebius import NebiusProvider
    from autoscaler.providers.neevcloud import NeevCloudProvider
    from autoscaler.providers.netmind import NetMindProvider

    classes: dict[str, type[BaseProvider]] = {
        "neevcloud": NeevCloudProvider,
        "netmind": NetMindProvider,
        "nebius": NebiusProvider,
    }
    cls = classes.get(profile.type)
    if cls is None:
        raise ProviderConfigError(
            f"provider {profile.name!r}: type {profile.type!r} must be one of "
            f"{', '.join(PROVIDER_TYPES)}"
        )
    if profile.type == "neevcloud" and not (profile.org_id and profile.project_id):
        raise ProviderConfigError(
            f"provider {profile.name!r}: neevcloud needs org_id and project_id"
        )
    if not profile.base_url.startswith(("http://", "https://")):
        raise ProviderConfigError(
            f"provider {profile.name!r}: base_url {profile.base_url!r} must be an http(s) URL"
        )
    http = ProviderHttp(
        profile.name,
        profile.base_url,
        timeout=profile.timeout,
        auth=_auth(profile),
        on_request=on_request,
        transport=transport,
        clock=clock,
        rate_limit_per_operation=cls.rate_limit_per_operation,
    )
    return cls(profile, http, retry=retry, sleep=sleep, clock=clock, rng=rng)


def refresh_credentials(provider: Provider, profile: ProviderProfile) -> list[str]:
    """Resolve `profile`'s credentials again and give `provider` the new ones when they
    changed; the names of those that changed (`providers.NAME.token`), never values.
    Raises SecretError (naming the reference) when one cannot be read: the old ones stay."""
    http = getattr(provider, "http", None)
    if not isinstance(http, ProviderHttp) or http.auth is None:
        return []
    fresh = _auth(profile)
    prefix = f"providers.{profile.name}"
    if isinstance(fresh, StaticToken) and isinstance(http.auth, StaticToken):
        if fresh.secrets() == http.auth.secrets():
            return []
        http.auth = fresh
        return [f"{prefix}.token"]
    if isinstance(fresh, LoginToken) and isinstance(http.auth, LoginToken):
        old = http.auth.credentials()
        new = fresh.credentials()
        changed = [f"{prefix}.login.{k}" for k in ("username", "password") if old[k] != new[k]]
        if changed or fresh.url != http.auth.url:
            http.auth = fresh  # logs in again with the new credentials on the next call
        return changed
    http.auth = fresh  # token <-> login: a changed profile rebuilds the client anyway
    return [prefix]


__all__ = [
    "PROVIDER_TYPES",
    "ProviderConfigError",
    "Secret",
    "build_provider",
    "refresh_credentials",
]
