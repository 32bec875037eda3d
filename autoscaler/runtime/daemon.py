"""The daemon: lifecycle and wiring. Owns the store, the providers, the source pool, the
scheduler and one `PolicyRunner` per policy; implements `DaemonControl` for the HTTP side by
delegating to the concern that owns each part.

Start order (`run`): open the store -> build providers -> load every policy's state ->
reconcile every pending intent (`reconcile.py`) -> schedule -> report ready. Stop order
(`shutdown.py` drives it): stop scheduling -> let in-flight evaluations finish within
`shutdown_timeout` (what does not finish stays a pending intent for the next start) ->
close sources, providers and the store.

The concerns around it, one module each: who may act (election, takeover, fencing:
`leadership.py`), admin control (pause, resume, override, activate, history: `admin.py`),
applying a reloaded config (`apply.py`; file watching is `reload.py`), stopping and signals
(`shutdown.py`). Must not live here: the per-policy evaluation (`runner.py`), the action
protocols (`actions.py`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import anyio
import structlog
from anyio.abc import TaskStatus

from autoscaler.policy.model import DaemonConfig, Policy, ProviderProfile
from autoscaler.providers.base import Provider
from autoscaler.runtime import health, readable
from autoscaler.runtime.actions import ActionContext
from autoscaler.runtime.admin import AdminControl, runner_of
from autoscaler.runtime.apply import apply_config
from autoscaler.runtime.history import HistoryBuffer
from autoscaler.runtime.leadership import LeaderRole, LeadershipLike
from autoscaler.runtime.protocols import Recorder
from autoscaler.runtime.reads import DeploymentView, SourceFactory, SourcePool, close_quietly
from autoscaler.runtime.reconcile import reconcile_pending
from autoscaler.runtime.runner import PolicyRunner
from autoscaler.runtime.runner_env import RunnerEnv
from autoscaler.runtime.scheduling import PolicyScheduler, start_spread
from autoscaler.runtime.shutdown import graceful_stop
from autoscaler.store.base import FencedError, Store
from autoscaler.store.url import redact_url

log = structlog.get_logger("autoscaler.daemon")

ProviderFactory = Callable[..., Provider]
VIEW_SHARING_FROM = 50  # policies on one provider from which lookups share one list


def _default_factories() -> tuple[ProviderFactory, SourceFactory]:
    from autoscaler.providers.registry import build_provider
    from autoscaler.sources.registry import build_source

    return build_provider, build_source


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
        self.config = config
        self.config_path = config_path
        self.recorder = recorder
        self.store = store
        self._own_store = store is None
        default_provider, default_source = _default_factories()
        self.provider_factory = provider_factory or default_provider
        self.source_factory = source_factory or default_source
        self.clock = clock or time.time
        self.leader = LeaderRole(
            recorder, leadership, lambda: self.runners.values(), self.reconcile
        )
        self.admin = AdminControl(self)
        self.schedule_jobs = schedule  # False: tests drive `evaluate` themselves
        self.providers: dict[str, Provider] = {}
        self.views: dict[str, DeploymentView] = {}
        self.runners: dict[str, PolicyRunner] = {}
        self.scheduler = PolicyScheduler()
        self.sources = SourcePool(self.source_factory)
        self._initial_policies = list(policies)
        self._inflight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._stop = anyio.Event()
        self.stopped = anyio.Event()  # set once `run` has drained and closed everything
        self._started = False
        self._tg: anyio.abc.TaskGroup | None = None
        self._stopping = False
        self.history_buffer: HistoryBuffer | None = None
        self.last_reload: dict[str, Any] | None = None
        self.reconcile_results: list[dict[str, Any]] = []
        # Held counts a gateway reports with its activation request (gateway_wiring sets the
        # process's SignalHub.report; `gateway` sources read it).
        self.on_gateway_demand: Callable[[str, Mapping[str, int]], None] | None = None

    # -- wiring -----------------------------------------------------------------------------

    def _set_fast_watch(self, name: str, on: bool) -> None:
        if not self.scheduling():
            return
        if on:
            self.scheduler.add_zero_watch(name, self.config.zero_poll_interval, self._fast_job)
        elif self.scheduler.has_zero_watch(name):
            self.scheduler.remove_zero_watch(name)

    def can_act(self) -> bool:
        return self.leader.can_act()

    def scheduling(self) -> bool:
        """Jobs are scheduled (False: tests drive `evaluate` themselves, or stopping)."""
        return self.schedule_jobs and self.scheduler.running and not self._stopping

    def run_soon(self, name: str) -> None:
        if self.scheduling():
            self.scheduler.run_soon(name)

    def action_context(self) -> ActionContext:
        assert self.store is not None
        return ActionContext(
            store=self.store, epoch=self.leader.epoch, check_leader=self.leader.check
        )

    def _env(self) -> RunnerEnv:
        assert self.store is not None
        return RunnerEnv(
            store=self.store,
            recorder=self.recorder,
            clock=self.clock,
            actions=self.action_context(),
            sources=self.sources,
            config=lambda: self.config,
            can_act=self.can_act,
            on_fenced=self.leader.on_fenced,
            set_fast_watch=self._set_fast_watch,
            record_history=self._history().add,
        )

    def _history(self) -> HistoryBuffer:
        """The decision history's batching writer, flushed by `run` (and at close)."""
        if self.history_buffer is None:
            assert self.store is not None
            self.history_buffer = HistoryBuffer(self.store)
            if self._tg is not None:
                self._tg.start_soon(self.history_buffer.run, name="history")
        return self.history_buffer

    def provider_for(self, profile: ProviderProfile) -> Provider:
        provider = self.providers.get(profile.name)
        if provider is None:
            provider = self.provider_factory(profile, on_request=self.recorder.provider_request)
            self.providers[profile.name] = provider
            self.views[profile.name] = DeploymentView(provider)
        return provider

    def tune_views(self, policies: Sequence[Policy]) -> None:
        """Few policies on a provider: list on every lookup (sharing concurrent ones). Many:
        share one list for a quarter of their shortest interval (at most 5 s)."""
        by_provider: dict[str, list[float]] = {}
        for policy in policies:
            by_provider.setdefault(policy.deployment.provider, []).append(policy.interval)
        for name, view in self.views.items():
            intervals = by_provider.get(name, [])
            view.max_age = (
                0.0 if len(intervals) < VIEW_SHARING_FROM else min(5.0, min(intervals) / 4)
            )

    async def add_runner(self, policy: Policy) -> PolicyRunner:
        profile = self.config.providers[policy.deployment.provider]
        provider = self.provider_for(profile)
        runner = PolicyRunner(
            policy=policy, provider=provider, env=self._env(), view=self.views[profile.name]
        )
        runner.attach_sources()
        await runner.load()
        self.runners[policy.name] = runner
        self.recorder.dry_run(policy.name, runner.dry_run())
        return runner

    # -- start / stop -----------------------------------------------------------------------

    async def start(self) -> None:
        """Everything up to (and including) scheduling; `run` wraps it."""
        if self.store is None:
            from autoscaler.store import open_store

            self.store = open_store(self.config.state.url)
        from autoscaler.store.opening import open_checked

        await open_checked(self.store, self.config.state.url)  # StoreOpenError: one line
        for policy in self._initial_policies:
            await self.add_runner(policy)
        self.tune_views(self._initial_policies)
        if self.leader.lease is None and self.config.state.url.startswith(
            ("postgres", "postgresql")
        ):
            self.leader.elect_on(self.store, self.config.state.lease_ttl)
        if self.leader.lease is not None and self._tg is not None:
            await self.leader.first_election(self._tg)  # no action before it settles
        elif self.leader.lease is None:
            self.recorder.leadership(True, 0)  # a single daemon (SQLite) always leads
        await self.reconcile()
        if self.schedule_jobs:
            self.scheduler.start()
            count = len(self.runners)
            for runner in self.runners.values():
                self.schedule(runner, count)
        self._started = True
        log.info(
            "started",
            policies=len(self.runners),
            store=redact_url(self.config.state.url),
            dry_run=self.config.dry_run,
        )

    async def reconcile(self) -> None:
        """Finish every pending intent before anything is scheduled."""
        if not self.can_act():
            return
        policies = {name: r.policy for name, r in self.runners.items()}
        providers = {r.policy.deployment.provider: r.provider for r in self.runners.values()}
        try:
            self.reconcile_results, oldest = await reconcile_pending(
                self.action_context(), policies, providers
            )
        except FencedError as exc:
            await self.leader.on_fenced(exc)
            return
        for runner in self.runners.values():  # whatever is still open, its runner finishes
            runner.pending = oldest.get(runner.name)

    def schedule(self, runner: PolicyRunner, count: int) -> None:
        interval = runner.policy.interval
        self.scheduler.add_policy(
            runner.name, interval, self._eval_job, first_in=start_spread(interval, count)
        )

    async def _eval_job(self, name: str, job_id: str) -> None:
        due = self.scheduler.due_time(job_id)
        lag = max(0.0, time.time() - due) if due is not None else 0.0
        runner = self.runners.get(name)
        if runner is None or self._stopping:
            return
        await self.tracked(runner.evaluate(lag))

    async def _fast_job(self, name: str, job_id: str) -> None:
        self.scheduler.due_time(job_id)
        runner = self.runners.get(name)
        if runner is None or self._stopping:
            return
        await self.tracked(runner.fast_watch())

    async def tracked(self, work: Awaitable[object]) -> None:
        self._inflight += 1
        self._idle.clear()
        try:
            await work
        finally:
            self._inflight -= 1
            if self._inflight == 0:
                self._idle.set()

    async def evaluate(self, name: str) -> None:
        """Run one evaluation of `name` now (tests, admin actions)."""
        runner = runner_of(self, name)
        await self.tracked(runner.evaluate(0.0))

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Start, report started, and keep running until `request_stop`; then stop cleanly."""
        async with anyio.create_task_group() as tg:
            self._tg = tg
            try:
                await self.start()
            except BaseException:
                with anyio.CancelScope(shield=True):
                    await self.close_resources()
                raise
            task_status.started()
            try:
                await self._stop.wait()
            finally:
                await graceful_stop(self)
                self.stopped.set()
                tg.cancel_scope.cancel()

    def request_stop(self) -> None:
        self._stop.set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    @property
    def in_flight(self) -> int:
        return self._inflight

    async def drain(self, timeout: float) -> bool:
        """Stop scheduling and wait for in-flight evaluations; True when all finished."""
        self._stopping = True
        self.scheduler.pause()
        with anyio.move_on_after(timeout):
            await self._idle.wait()
        return self._idle.is_set()

    async def close_resources(self) -> None:
        self.scheduler.stop()
        await self.leader.release()  # before the store closes
        if self.history_buffer is not None:
            with anyio.CancelScope(shield=True), anyio.move_on_after(5):
                await self.history_buffer.flush()  # the last decisions, before the store closes
        for runner in list(self.runners.values()):
            await runner.detach_sources()
        await self.sources.aclose()
        providers, self.providers = list(self.providers.values()), {}
        for provider in providers:
            await close_quietly(provider, "provider")
        if self.store is not None and self._own_store:
            try:
                await self.store.close()
            except Exception as exc:
                log.warning("close_failed", what="store", error=str(exc))

    # -- DaemonControl ------------------------------------------------------------------------

    def role(self) -> str:
        return self.leader.role()

    def leadership_status(self) -> dict[str, Any]:
        return self.leader.status()

    def status(self) -> dict[str, Any]:
        return {
            **self.leadership_status(),
            "config_loaded": self._started,
            "config_path": self.config_path,
            "dry_run": self.config.dry_run,
            "stopping": self._stopping,
            "last_reload": readable.stamped(self.last_reload),
            "providers": self.provider_status(),
            "policies": {name: r.status() for name, r in sorted(self.runners.items())},
        }

    def unauthorized(self) -> dict[str, Any]:
        return health.unauthorized(self.providers, self.runners)

    def unauthorized_problems(self) -> list[str]:
        return health.unauthorized_problems(self.providers, self.runners)

    def provider_status(self) -> dict[str, Any]:
        return health.provider_status(self.providers, self.runners)

    async def ready(self) -> tuple[bool, list[str]]:
        problems = health.lifecycle_problems(self._started, self._stopping)
        problems += self.unauthorized_problems() + await health.store_problems(self.store)
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
