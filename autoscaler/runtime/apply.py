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
from autoscaler.policy.model import DaemonConfig, Policy, ProviderProfile
from autoscaler.providers.base import Provider
from autoscaler.runtime.protocols import Recorder
from autoscaler.runtime.reads import DeploymentView, close_quietly
from autoscaler.runtime.runner import PolicyRunner
from autoscaler.runtime.scheduling import PolicyScheduler

log = structlog.get_logger("autoscaler.daemon")


class ApplyHost(Protocol):
    """What applying a config needs of the daemon."""

    config: DaemonConfig
    runners: dict[str, PolicyRunner]
    providers: dict[str, Provider]
    views: dict[str, DeploymentView]
    scheduler: PolicyScheduler
    recorder: Recorder

    def clock(self) -> float: ...

    def scheduling(self) -> bool: ...

    def provider_for(self, profile: ProviderProfile) -> Provider: ...

    def tune_views(self, policies: Sequence[Policy]) -> None: ...

    def schedule(self, runner: PolicyRunner, count: int) -> None: ...

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

    for name in [n for n in host.runners if n not in wanted]:
        gone = host.runners.pop(name)
        async with gone.lock:
            host.scheduler.remove_policy(name)
            await gone.detach_sources()
        host.recorder.policy_removed(name)
        report["removed"].append(name)

    old_providers = {n: host.providers.pop(n) for n in changed_profiles if n in host.providers}
    for n in old_providers:
        host.views.pop(n, None)
    for name, policy in wanted.items():
        existing = host.runners.get(name)
        if existing is None:
            added = await host.add_runner(policy)
            if host.scheduling():
                host.schedule(added, len(wanted))
            report["added"].append(name)
        elif policy != existing.policy or policy.deployment.provider in changed_profiles:
            await _change(host, existing, policy)
            host.recorder.dry_run(name, existing.dry_run())
            report["changed"].append(name)
    host.tune_views(list(wanted.values()))
    for provider in old_providers.values():
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
        existing.provider = host.provider_for(host.config.providers[policy.deployment.provider])
        existing.view = host.views[policy.deployment.provider]
        if sources_changed:
            await existing.detach_sources()
            existing.attach_sources()
        if interval_changed and host.scheduling():
            host.schedule(existing, 1)


def keep_state(new: DaemonConfig, old: DaemonConfig) -> DaemonConfig:
    """The store stays the one the daemon opened; everything else follows the new file."""
    if new.state == old.state:
        return new
    return dataclasses.replace(new, state=old.state)
