"""The daemon: the composition of its parts, the order they start and stop in, and the
`DaemonControl` the HTTP side asks, each request delegated to the part that owns the thing.

The parts, one module each: what it connects to, the store, provider clients, sources, the
decision history writer (`connections.py`); where it is between start and stop, and the work
in flight (`lifecycle.py`); the loaded policies, their runners and scheduled jobs
(`policyset.py`); who may act: election, takeover, fencing (`leadership.py`); admin control:
pause, resume, override, activate, history (`admin.py`). Around them: applying a reloaded
config (`apply.py`; file watching is `reload.py`), stopping and signals (`shutdown.py`).

Start order (`run`): open the store -> build providers -> load every policy's state ->
reconcile every pending intent (`reconcile.py`) -> schedule -> report ready. Stop order
(`shutdown.py` drives it): stop scheduling -> let in-flight evaluations finish within
`shutdown_timeout` (what does not finish stays a pending intent for the next start) ->
close sources, providers and the store.

Lives here besides: building a runner (its provider, deployment list and `RunnerEnv`). Must
not live here: the per-policy evaluation (`runner.py`), the action protocols (`actions.py`),
state of any part (each part owns its own).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import anyio
import structlog
from anyio.abc import TaskStatus

from autoscaler.policy.model import DaemonConfig, Policy
from autoscaler.providers.base import Provider
from autoscaler.runtime import health, readable
from autoscaler.runtime.actions import ActionContext
from autoscaler.runtime.admin import AdminControl
from autoscaler.runtime.apply import apply_config
from autoscaler.runtime.connections import Connections, ProviderFactory
from autoscaler.runtime.leadership import LeaderRole, LeadershipLike
from autoscaler.runtime.lifecycle import Lifecycle
from autoscaler.runtime.policyset import PolicySet
from autoscaler.runtime.protocols import Recorder
from autoscaler.runtime.reads import SourceFactory
from autoscaler.runtime.runner import PolicyRunner
from autoscaler.runtime.runner_env import RunnerEnv
from autoscaler.runtime.shutdown import graceful_stop
from autoscaler.store.base import FencedError, Store
from autoscaler.store.url import redact_url

log = structlog.get_logger("autoscaler.daemon")


class Daemon:
    def __init__(
        self,
        config: DaemonConfig,
        policies: Sequence[Policy],
        *,
        config_path: str | None,
        recorder: Recorder,
        store: Store | None = None,
        provider_factory: ProviderFactory | None = None,
        source_factory: SourceFactory | None = None,
        clock: Callable[[], float] | None = None,
        leadership: LeadershipLike | None = None,
        schedule: bool = True,
    ) -> None:
        self.config = config  # the config in force (`apply` replaces it)
        self.config_path = config_path
        self.recorder = recorder
        self.clock = clock or time.time
        self.last_reload: dict[str, Any] | None = None  # written by `reload.Reloader`
        self.connections = Connections(
            store=store,
            provider_factory=provider_factory,
            source_factory=source_factory,
            on_provider_request=recorder.provider_request,
        )
        self.lifecycle = Lifecycle()
        self.policies = PolicySet(
            policies,
            self.lifecycle,
            schedule=schedule,  # False: tests drive `evaluate` themselves
            zero_poll=lambda: self.config.zero_poll_interval,
        )
        self.leader = LeaderRole(
            recorder, leadership, lambda: self.policies.runners.values(), self.reconcile
        )
        self.admin = AdminControl(
            self.policies, self.connections, can_act=self.leader.can_act, clock=self.clock
        )

    @property
    def runners(self) -> dict[str, PolicyRunner]:
        """The loaded policies' runners by name (`policies.runners`), read-only."""
        return self.policies.runners

    # -- building a runner ----------------------------------------------------------------------

    def action_context(self) -> ActionContext:
        return ActionContext(
            store=self.connections.opened_store(),
            epoch=self.leader.epoch,
            check_leader=self.leader.check,
        )

    def _env(self) -> RunnerEnv:
        assert self.connections.history is not None
        return RunnerEnv(
            store=self.connections.opened_store(),
            recorder=self.recorder,
            clock=self.clock,
            actions=self.action_context(),
            sources=self.connections.sources,
            config=lambda: self.config,
            can_act=self.leader.can_act,
            on_fenced=self.leader.on_fenced,
            set_fast_watch=self.policies.set_fast_watch,
            record_history=self.connections.history.add,
        )

    async def add_runner(self, policy: Policy) -> PolicyRunner:
        profile = self.config.providers[policy.deployment.provider]
        provider = self.connections.provider_for(profile)
        runner = PolicyRunner(
            policy=policy,
            provider=provider,
            env=self._env(),
            view=self.connections.views[profile.name],
        )
        runner.attach_sources()
        await runner.load()
        self.policies.add(runner)
        self.recorder.dry_run(policy.name, runner.dry_run())
        return runner

    # -- start / stop -----------------------------------------------------------------------

    async def start(self) -> None:
        """Everything up to (and including) scheduling; `run` wraps it."""
        history = await self.connections.open_store(self.config.state.url)
        if self.lifecycle.tg is not None:
            self.lifecycle.tg.start_soon(history.run, name="history")
        for policy in self.policies.initial:
            await self.add_runner(policy)
        self.connections.tune_views(self.policies.initial)
        await self._elect()
        await self.reconcile()
        self.policies.start_scheduling()
        self.lifecycle.started = True
        log.info(
            "started",
            policies=len(self.policies.runners),
            store=redact_url(self.config.state.url),
            dry_run=self.config.dry_run,
        )

    async def _elect(self) -> None:
        """A shared (PostgreSQL) store: take part in its election, and wait for the first one
        to settle (no action before it). A single daemon (SQLite) always leads."""
        url = self.config.state.url
        if self.leader.lease is None and url.startswith(("postgres", "postgresql")):
            self.leader.elect_on(self.connections.opened_store(), self.config.state.lease_ttl)
        if self.leader.lease is not None and self.lifecycle.tg is not None:
            await self.leader.first_election(self.lifecycle.tg)
        elif self.leader.lease is None:
            self.recorder.leadership(True, 0)

    async def reconcile(self) -> None:
        """Finish every pending intent before anything is scheduled (the leader only)."""
        if not self.leader.can_act():
            return
        try:
            await self.policies.reconcile(self.action_context())
        except FencedError as exc:
            await self.leader.on_fenced(exc)

    async def evaluate(self, name: str) -> None:
        """Run one evaluation of `name` now (tests, admin actions)."""
        await self.policies.evaluate(self.policies.runner(name))

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Start, report started, and keep running until `request_stop`; then stop cleanly."""
        async with anyio.create_task_group() as tg:
            self.lifecycle.tg = tg
            try:
                await self.start()
            except BaseException:
                with anyio.CancelScope(shield=True):
                    await self.close_resources()
                raise
            task_status.started()
            try:
                await self.lifecycle.wait_for_stop_request()
            finally:
                await graceful_stop(self)
                self.lifecycle.stopped.set()
                tg.cancel_scope.cancel()

    def request_stop(self) -> None:
        self.lifecycle.request_stop()

    async def drain(self, timeout: float) -> bool:
        """Stop scheduling and wait for in-flight evaluations; True when all finished."""
        self.policies.scheduler.pause()
        return await self.lifecycle.drain(timeout)

    async def close_resources(self) -> None:
        self.policies.scheduler.stop()
        await self.leader.release()  # before the store closes
        await self.connections.flush_history()
        await self.policies.detach_sources()
        await self.connections.close()

    # -- DaemonControl ------------------------------------------------------------------------

    def role(self) -> str:
        return self.leader.role()

    def leadership_status(self) -> dict[str, Any]:
        return self.leader.status()

    def status(self) -> dict[str, Any]:
        return {
            **self.leadership_status(),
            "config_loaded": self.lifecycle.started,
            "config_path": self.config_path,
            "dry_run": self.config.dry_run,
            "stopping": self.lifecycle.stopping,
            "last_reload": readable.stamped(self.last_reload),
            "providers": self.provider_status(),
            "policies": self.policies.status(),
        }

    def _health_parts(self) -> tuple[dict[str, Provider], dict[str, PolicyRunner]]:
        return self.connections.providers, self.policies.runners

    def unauthorized(self) -> dict[str, Any]:
        return health.unauthorized(*self._health_parts())

    def unauthorized_problems(self) -> list[str]:
        return health.unauthorized_problems(*self._health_parts())

    def provider_status(self) -> dict[str, Any]:
        return health.provider_status(*self._health_parts())

    async def ready(self) -> tuple[bool, list[str]]:
        problems = health.lifecycle_problems(self.lifecycle.started, self.lifecycle.stopping)
        problems += self.unauthorized_problems()
        problems += await health.store_problems(self.connections.store)
        return (not problems, problems)

    # -- reload, admin control (their own modules) ----------------------------------------------

    async def apply(self, config: DaemonConfig, policies: Sequence[Policy]) -> dict[str, list[str]]:
        """Switch to a validated config and policy set without a restart (`apply.py`)."""
        return await apply_config(self, config, policies)

    async def pause(self, policy: str) -> dict[str, Any]:
        return await self.admin.pause(policy)

    async def resume(self, policy: str) -> dict[str, Any]:
        return await self.admin.resume(policy)

    async def override(self, policy: str, replicas: int, duration: float) -> dict[str, Any]:
        return await self.admin.override(policy, replicas, duration)

    async def cancel_override(self, policy: str) -> dict[str, Any]:
        return await self.admin.cancel_override(policy)

    async def history(
        self, policy: str, since: float | None, limit: int | None
    ) -> list[dict[str, Any]]:
        return await self.admin.history(policy, since, limit)

    async def activate(
        self, policy: str, origin: str | None = None, held: Mapping[str, int] | None = None
    ) -> dict[str, Any]:
        return await self.admin.activate(policy, origin, held)

    def route(self, policy: str) -> dict[str, Any] | None:
        return self.admin.route(policy)
