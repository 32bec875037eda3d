"""The daemon's health as /status and /readyz show it: per provider profile, the last error,
the rate-limit gate, a credential refusal (401/403) and the policies on that profile; whether
the store is writable; whether the daemon is starting or stopping.

Read-only over the daemon's parts; the providers keep their own figures
(`providers/http.py` `status()`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from autoscaler.providers.base import Provider
from autoscaler.runtime.runner import PolicyRunner
from autoscaler.store.base import Store


def unauthorized(
    providers: Mapping[str, Provider], runners: Mapping[str, PolicyRunner]
) -> dict[str, Any]:
    """Profiles whose provider refuses our credentials now (401/403), with the policies
    that cannot act because of it; empty when every provider answers."""
    return {
        name: {**entry["unauthorized"], "policies": entry["policies"]}
        for name, entry in provider_status(providers, runners).items()
        if entry.get("unauthorized")
    }


def unauthorized_problems(
    providers: Mapping[str, Provider], runners: Mapping[str, PolicyRunner]
) -> list[str]:
    """/readyz problems: alive and leading, but unable to act for these policies."""
    return [
        f"provider {name!r} refuses our credentials (HTTP {u.get('status')} since "
        f"{u.get('t')}): check {u.get('credential') or 'its token or login'}; "
        f"policies that cannot act: {', '.join(u['policies']) or 'none'}"
        for name, u in unauthorized(providers, runners).items()
    ]


def provider_status(
    providers: Mapping[str, Provider], runners: Mapping[str, PolicyRunner]
) -> dict[str, Any]:
    """Per profile: last error (ISO time, failures in a row), when the next call may go
    while rate limited, a credential refusal; with the policies on it."""
    out: dict[str, Any] = {}
    for name, provider in sorted(providers.items()):
        status = getattr(provider, "status", None)
        entry: dict[str, Any] = dict(status()) if callable(status) else {}
        entry["policies"] = sorted(
            p for p, r in runners.items() if r.policy.deployment.provider == name
        )
        out[name] = entry
    return out


def lifecycle_problems(started: bool, stopping: bool) -> list[str]:
    problems = []
    if not started:
        problems.append("config not loaded yet (daemon starting)")
    if stopping:
        problems.append("daemon stopping")
    return problems


async def store_problems(store: Store | None) -> list[str]:
    if store is None:
        return ["store not open"]
    try:
        if not await store.check_writable():
            return ["store not writable"]
    except Exception as exc:
        return [f"store not writable: {exc}"]
    return []
