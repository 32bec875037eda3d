"""Reload, second half: apply a validated config and policy set to the running daemon without
a restart (`reload.py` watches the files and validates them, then calls `apply_config`).

Removed policies stop being evaluated; their deployments are left exactly as they are. A
changed provider profile gets a new client (the old one is closed after the switch); a changed
policy keeps its runner, its state and its pending intent, under its lock. `state.url` is the
one key that needs a restart (a new store): it is kept, with a warning.

Must not live here: file watching and validation (`reload.py`), starting runners
(`daemon.py`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Protocol

import structlog

from autoscaler import core
from autoscaler.policy.model import DaemonConfig, Policy
from autoscaler.runtime.connections import Connections
from autoscaler.runtime.policyset import PolicySet
from autoscaler.runtime.protocols import Recorder
from autoscaler.runtime.reads import close_quietly
from autoscaler.runtime.runner import PolicyRunner

log = structlog.get_logger("autoscaler.daemon")


class ApplyHost(Protocol):
    """What applying a config needs of the daemon: its parts, and how it builds a runner."""

    config: DaemonConfig
    policies: PolicySet
    connections: Connections
    recorder: Recorder

    def clock(self) -> float: ...

    async def add_runner(self, policy: Policy) -> PolicyRunner: ...


async def apply_config(
    host: ApplyHost, config: DaemonConfig, policies: Sequence[Policy]
) -> dict[str, list[str]]:
    """Switch `host` to `config` and `policies`; returns the names added, removed, changed."""
    old_config = host.config
    changed_profiles = {
        name
        for name, profile in config.providers.items()
        if name in old_config.providers and old_config.providers[name] != profile
    }
    if config.state.url != old_config.state.url:
        log.warning("reload_ignored", key="state.url", note="a new store needs a restart")
    host.config = keep_state(config, old_config)
    wanted = {p.name: p for p in policies}
    report: dict[str, list[str]] = {"added": [], "removed": [], "changed": []}

    for name in [n for n in host.policies.runners if n not in wanted]:
        await host.policies.remove(name)
        host.recorder.policy_removed(name)
        report["removed"].append(name)

    old_providers = host.connections.drop_providers(changed_profiles)
    for name, policy in wanted.items():
        existing = host.policies.runners.get(name)
        if existing is None:
            added = await host.add_runner(policy)
            if host.policies.scheduling():
                host.policies.schedule(added, len(wanted))
            report["added"].append(name)
        elif policy != existing.policy or policy.deployment.provider in changed_profiles:
            await _change(host, existing, policy)
            host.recorder.dry_run(name, existing.dry_run())
            report["changed"].append(name)
    host.connections.tune_views(list(wanted.values()))
    for provider in old_providers:
        await close_quietly(provider, "provider")
    return report


async def _change(host: ApplyHost, existing: PolicyRunner, policy: Policy) -> None:
    """A policy edited in place: same runner, state and pending intent; new settings."""
    async with existing.lock:
        if existing.policy.paused and not policy.paused and existing.state is not None:
            # The file's pause ended: scale-down waits out its window again.
            existing.state = core.with_resumed(existing.state, host.clock())
        interval_changed = policy.interval != existing.policy.interval
        sources_changed = policy.metrics != existing.policy.metrics
        existing.policy = policy
        profile = host.config.providers[policy.deployment.provider]
        existing.provider = host.connections.provider_for(profile)
        existing.view = host.connections.views[policy.deployment.provider]
        if sources_changed:
            await existing.detach_sources()
            existing.attach_sources()
        if interval_changed and host.policies.scheduling():
            host.policies.schedule(existing, 1)


def keep_state(new: DaemonConfig, old: DaemonConfig) -> DaemonConfig:
    """The store stays the one the daemon opened; everything else follows the new file."""
    if new.state == old.state:
        return new
    return dataclasses.replace(new, state=old.state)
