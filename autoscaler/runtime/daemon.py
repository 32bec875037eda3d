"""The daemon: owns the store, the providers, the source pool, the scheduler and one
`PolicyRunner` per policy; implements `DaemonControl` for the HTTP side.

Start order (`run`): open the store -> build providers -> load every policy's state ->
reconcile every pending intent (`reconcile.py`) -> schedule -> report ready. Stop order
(`shutdown.py` drives it): stop scheduling -> let in-flight evaluations finish within
`shutdown_timeout` (what does not finish stays a pending intent for the next start) ->
close sources, providers and the store.

Leader election: with a `leadership` object (PostgreSQL, several daemons) the daemon acts only
while leader; every provider action is preceded by `leadership.check()` and every store write
carries the lease epoch. A `FencedError` makes it step down at once.
Must not live here: the per-policy evaluation (`runner.py`), the action protocols
(`actions.py`), file watching (`reload.py`), signals (`shutdown.py`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import anyio
import structlog
from anyio.abc import TaskStatus

from autoscaler import core
from autoscaler.core.timefmt import iso
from autoscaler.policy.model import DaemonConfig, Policy, ProviderProfile
from autoscaler.providers.base import Provider
from autoscaler.runtime import readable
from autoscaler.runtime.actions import ActionContext
from autoscaler.runtime.control import NotLeaderError, Recorder, UnknownPolicyError
from autoscaler.runtime.history import HistoryBuffer
from autoscaler.runtime.reconcile import reconcile_all
from autoscaler.runtime.runner import (
    DeploymentView,
    PolicyRunner,
    RunnerEnv,
    SourceFactory,
    SourcePool,
)
from autoscaler.runtime.scheduling import PolicyScheduler, start_spread
from autoscaler.store.base import FencedError, Intent, Store

log = structlog.get_logger("autoscaler.daemon")

ProviderFactory = Callable[..., Provider]
TAKEOVER_LOADS = 4  # concurrent state loads on election (the pool also serves the lease)
VIEW_SHARING_FROM = 50  # policies on one provider from which lookups share one list


class LeadershipLike(Protocol):
    """What the daemon needs of `autoscaler.store.leader.Leadership`."""

    @property
    def is_leader(self) -> bool: ...

    @property
    def epoch(self) -> int | None: ...

    async def check(self) -> int: ...

    async def run(self, *, task_status: TaskStatus[None] = ...) -> None: ...


def _default_provider_factory() -> ProviderFactory:
    from autoscaler.providers.registry import build_provider

    return build_provider


def _default_source_factory() -> SourceFactory:
    from autoscaler.sources.registry import build_source

    return build_source


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
        self.provider_factory = provider_factory or _default_provider_factory()
        self.source_factory = source_factory or _default_source_factory()
        self.clock = clock or time.time
        self.leadership = leadership
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
        self._fenced = False
        self._needs_reconcile = False
        self._term_epoch: int | None = None
        self._leader_scope: anyio.CancelScope | None = None
        self._leader_done = anyio.Event()
        self._takeovers: anyio.abc.TaskGroup | None = None  # lives with the lease loop
        self._takeover_done: anyio.Event | None = None
        self.history_buffer: HistoryBuffer | None = None
        self.last_reload: dict[str, Any] | None = None
        self.reconcile_results: list[dict[str, Any]] = []
        # Held counts a gateway reports with its activation request (gateway_wiring sets the
        # process's SignalHub.report; `gateway` sources read it).
        self.on_gateway_demand: Callable[[str, Mapping[str, int]], None] | None = None

    # -- wiring -----------------------------------------------------------------------------

    def _epoch(self) -> int | None:
        """The epoch every store write carries: the term we were last elected in (never None
        under election, so a write after losing the lease is refused, not unfenced)."""
        if self.leadership is None:
            return None
        return self._term_epoch if self._term_epoch is not None else -1

    async def _check_leader(self) -> None:
        if self._fenced:
            raise FencedError("this daemon stepped down")
        if self.leadership is not None:
            await self.leadership.check()

    def can_act(self) -> bool:
        if self._fenced or self._needs_reconcile:
            return False
        return self.leadership is None or bool(self.leadership.is_leader)

    async def _on_elected(self, epoch: int) -> None:
        """Leader now: forget what we believed (the previous leader changed the store), finish
        every pending intent, then act again.

        The lease loop awaits this callback and renews only after it, so the reload runs in a
        task beside the loop: reloading thousands of policies inline outlasted the lease, and
        the leader lost it and was re-elected over and over without ever acting (10,000
        policies, 15 s ttl). Until the task is done, can_act() is false."""
        self.recorder.leadership(True, epoch)
        self._term_epoch = epoch
        self._needs_reconcile = True
        if self._takeovers is None:
            await self._take_over(epoch)
            return
        done = anyio.Event()
        self._takeover_done = done
        self._takeovers.start_soon(self._take_over, epoch, done)

    async def _take_over(self, epoch: int, done: anyio.Event | None = None) -> None:
        limiter = anyio.CapacityLimiter(TAKEOVER_LOADS)

        async def reload(runner: PolicyRunner) -> None:
            # Every runner's lock is waited for at once: a standby's evaluation holds it while
            # it waits for a shared provider list (seconds with 10,000 deployments), and
            # waiting for them one after another took minutes. The loads are bounded.
            async with runner.lock, limiter:
                if self._term_epoch == epoch:
                    await runner.load()

        try:
            async with anyio.create_task_group() as reloads:
                for runner in list(self.runners.values()):
                    reloads.start_soon(reload, runner)
            if self._term_epoch != epoch:
                return  # that term ended meanwhile; a newer takeover does the work
            self._fenced = False
            self._needs_reconcile = False
            await self.reconcile()
        except Exception as exc:
            self._needs_reconcile = False
            log.error("election_reconcile_failed", error=str(exc))
        finally:
            if done is not None:
                done.set()

    async def _on_lost(self, epoch: int) -> None:
        self.recorder.leadership(False, epoch)
        log.warning("leadership_lost", epoch=epoch, note="standing by; no provider action")

    async def _on_fenced(self, exc: FencedError) -> None:
        if not self._fenced:
            log.error("fenced", error=str(exc), note="another daemon leads; standing down")
        if self.leadership is not None:
            # The lease loop re-elects us (or not); until then can_act() is false because
            # the lease says so. Without election a fence cannot happen (no epochs). The
            # epoch gauge keeps the term last held, as its help text says.
            self.recorder.leadership(False, self._term_epoch or 0)
        else:
            self._fenced = True

    def _set_fast_watch(self, name: str, on: bool) -> None:
        if not self.schedule_jobs or not self.scheduler.running or self._stopping:
            return
        if on:
            self.scheduler.add_zero_watch(name, self.config.zero_poll_interval, self._fast_job)
        elif self.scheduler.has_zero_watch(name):
            self.scheduler.remove_zero_watch(name)

    def _run_soon(self, name: str) -> None:
        if self.schedule_jobs and self.scheduler.running and not self._stopping:
            self.scheduler.run_soon(name)

    def _wait_ready_timeout(self, provider: str) -> float:
        profile = self.config.providers.get(provider)
        return profile.wait_ready_timeout if profile else 1800.0

    def action_context(self) -> ActionContext:
        assert self.store is not None
        return ActionContext(store=self.store, epoch=self._epoch, check_leader=self._check_leader)

    def _env(self) -> RunnerEnv:
        assert self.store is not None
        return RunnerEnv(
            store=self.store,
            recorder=self.recorder,
            clock=self.clock,
            actions=self.action_context(),
            sources=self.sources,
            global_dry_run=lambda: self.config.dry_run,
            can_act=self.can_act,
            set_fast_watch=self._set_fast_watch,
            run_soon=self._run_soon,
            on_fenced=self._on_fenced,
            wait_ready_timeout=self._wait_ready_timeout,
            fast_poll=lambda: self.config.zero_poll_interval,
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

    def _provider(self, profile: ProviderProfile) -> Provider:
        provider = self.providers.get(profile.name)
        if provider is None:
            provider = self.provider_factory(profile, on_request=self.recorder.provider_request)
            self.providers[profile.name] = provider
            self.views[profile.name] = DeploymentView(provider)
        return provider

    def _tune_views(self, policies: Sequence[Policy]) -> None:
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
        provider = self._provider(profile)
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
        self._tune_views(self._initial_policies)
        if self.leadership is None and self.config.state.url.startswith(("postgres", "postgresql")):
            from autoscaler.store.leader import Leadership

            self.leadership = Leadership(
                self.store,
                getattr(self.store, "cluster", "default"),
                ttl=self.config.state.lease_ttl,
                on_elected=self._on_elected,
                on_lost=self._on_lost,
            )
        if self.leadership is not None and self._tg is not None:
            self._needs_reconcile = True  # no action before the first election settles
            await self._tg.start(self._lead)
            while self._takeover_done is not None and not self._takeover_done.is_set():
                await self._takeover_done.wait()  # (a newer term may replace the event)
            self._needs_reconcile = False
            if not self.leadership.is_leader:
                self.recorder.leadership(False, 0)
                log.info("standby", note="another daemon leads; evaluating without acting")
        elif self.leadership is None:
            self.recorder.leadership(True, 0)  # a single daemon (SQLite) always leads
        await self.reconcile()
        if self.schedule_jobs:
            self.scheduler.start()
            count = len(self.runners)
            for runner in self.runners.values():
                self._schedule(runner, count)
        self._started = True
        log.info(
            "started",
            policies=len(self.runners),
            store=_shown_url(self.config.state.url),
            dry_run=self.config.dry_run,
        )

    async def reconcile(self) -> None:
        """Finish every pending intent before anything is scheduled."""
        if not self.can_act():
            return
        policies = {name: r.policy for name, r in self.runners.items()}
        providers = {name: r.provider for name, r in self.runners.items()}
        try:
            results = await reconcile_all(
                self.action_context(),
                policies,
                {r.policy.deployment.provider: r.provider for r in self.runners.values()},
            )
        except FencedError as exc:
            await self._on_fenced(exc)
            return
        del providers
        self.reconcile_results = [
            {"intent": i.id, "policy": i.policy, "kind": i.kind, "outcome": o, "error": e}
            for i, o, e in results
        ]
        still_open: dict[str, list[Intent]] = {}
        for intent in await self.store.pending_intents() if self.store else []:
            still_open.setdefault(intent.policy, []).append(intent)
        for runner in self.runners.values():  # whatever is still open, its runner finishes
            pending = still_open.get(runner.name)
            runner.pending = min(pending, key=lambda i: i.id) if pending else None

    async def _lead(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        assert self.leadership is not None
        try:
            with anyio.CancelScope() as scope:
                self._leader_scope = scope
                async with anyio.create_task_group() as takeovers:
                    self._takeovers = takeovers
                    await self.leadership.run(task_status=task_status)
        finally:
            self._takeovers = None
            self._leader_done.set()

    def _schedule(self, runner: PolicyRunner, count: int) -> None:
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
        await self._tracked(runner.evaluate(lag))

    async def _fast_job(self, name: str, job_id: str) -> None:
        self.scheduler.due_time(job_id)
        runner = self.runners.get(name)
        if runner is None or self._stopping:
            return
        await self._tracked(runner.fast_watch())

    async def _tracked(self, work: Any) -> None:
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
        runner = self._runner(name)
        await self._tracked(runner.evaluate(0.0))

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Start, report started, and keep running until `request_stop`; then stop cleanly."""
        from autoscaler.runtime.shutdown import graceful_stop

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
        if self._leader_scope is not None:
            # Release the lease (Leadership does it, shielded and bounded) before the store
            # closes, so a standby takes over at once instead of after the TTL.
            self._leader_scope.cancel()
            with anyio.move_on_after(5):
                await self._leader_done.wait()
        if self.history_buffer is not None:
            with anyio.CancelScope(shield=True), anyio.move_on_after(5):
                await self.history_buffer.flush()  # the last decisions, before the store closes
        for runner in list(self.runners.values()):
            await runner.detach_sources()
        await self.sources.aclose()
        providers, self.providers = list(self.providers.values()), {}
        for provider in providers:
            try:
                await provider.aclose()
            except Exception as exc:
                log.warning("close_failed", what="provider", error=str(exc))
        if self.store is not None and self._own_store:
            try:
                await self.store.close()
            except Exception as exc:
                log.warning("close_failed", what="store", error=str(exc))

    # -- reload ------------------------------------------------------------------------------

    async def apply(self, config: DaemonConfig, policies: Sequence[Policy]) -> dict[str, list[str]]:
        """Switch to a validated config and policy set without a restart. Removed policies
        stop being evaluated; their deployments are left exactly as they are."""
        old_config = self.config
        changed_profiles = {
            name
            for name, profile in config.providers.items()
            if name in old_config.providers and old_config.providers[name] != profile
        }
        if config.state.url != old_config.state.url:
            log.warning("reload_ignored", key="state.url", note="a new store needs a restart")
        self.config = _keep_state(config, old_config)
        wanted = {p.name: p for p in policies}
        report: dict[str, list[str]] = {"added": [], "removed": [], "changed": []}

        for name in [n for n in self.runners if n not in wanted]:
            gone = self.runners.pop(name)
            async with gone.lock:
                self.scheduler.remove_policy(name)
                await gone.detach_sources()
            self.recorder.policy_removed(name)
            report["removed"].append(name)

        old_providers = {n: self.providers.pop(n) for n in changed_profiles if n in self.providers}
        for n in old_providers:
            self.views.pop(n, None)
        for name, policy in wanted.items():
            existing = self.runners.get(name)
            if existing is None:
                added = await self.add_runner(policy)
                if self.schedule_jobs and self.scheduler.running:
                    self._schedule(added, len(wanted))
                report["added"].append(name)
                continue
            profile_changed = policy.deployment.provider in changed_profiles
            if policy == existing.policy and not profile_changed:
                continue
            async with existing.lock:
                if existing.policy.paused and not policy.paused and existing.state is not None:
                    # The file's pause ended: scale-down waits out its window again.
                    existing.state = core.with_resumed(existing.state, self.clock())
                interval_changed = policy.interval != existing.policy.interval
                sources_changed = policy.metrics != existing.policy.metrics
                existing.policy = policy
                existing.provider = self._provider(
                    self.config.providers[policy.deployment.provider]
                )
                existing.view = self.views[policy.deployment.provider]
                if sources_changed:
                    await existing.detach_sources()
                    existing.attach_sources()
                if interval_changed and self.schedule_jobs and self.scheduler.running:
                    self._schedule(existing, 1)
            self.recorder.dry_run(name, existing.dry_run())
            report["changed"].append(name)
        self._tune_views(list(wanted.values()))
        for provider in old_providers.values():
            try:
                await provider.aclose()
            except Exception as exc:
                log.warning("close_failed", what="provider", error=str(exc))
        return report

    # -- DaemonControl ------------------------------------------------------------------------

    def _runner(self, name: str) -> PolicyRunner:
        runner = self.runners.get(name)
        if runner is None:
            raise UnknownPolicyError(name)
        return runner

    def role(self) -> str:
        if self.leadership is None:
            return "leader"
        return "leader" if self.can_act() else "standby"

    def leadership_status(self) -> dict[str, Any]:
        return {"role": self.role(), "epoch": self._epoch()}

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
        """Profiles whose provider refuses our credentials now (401/403), with the policies
        that cannot act because of it; empty when every provider answers."""
        return {
            name: {**entry["unauthorized"], "policies": entry["policies"]}
            for name, entry in self.provider_status().items()
            if entry.get("unauthorized")
        }

    def unauthorized_problems(self) -> list[str]:
        """/readyz problems: alive and leading, but unable to act for these policies."""
        return [
            f"provider {name!r} refuses our credentials (HTTP {u.get('status')} since "
            f"{u.get('t')}): check {u.get('credential') or 'its token or login'}; "
            f"policies that cannot act: {', '.join(u['policies']) or 'none'}"
            for name, u in self.unauthorized().items()
        ]

    def provider_status(self) -> dict[str, Any]:
        """Per profile: last error (ISO time, failures in a row), when the next call may go
        while rate limited, a credential refusal; with the policies on it."""
        out: dict[str, Any] = {}
        for name, provider in sorted(self.providers.items()):
            status = getattr(provider, "status", None)
            entry: dict[str, Any] = dict(status()) if callable(status) else {}
            entry["policies"] = sorted(
                p for p, r in self.runners.items() if r.policy.deployment.provider == name
            )
            out[name] = entry
        return out

    async def ready(self) -> tuple[bool, list[str]]:
        problems: list[str] = []
        if not self._started:
            problems.append("config not loaded yet (daemon starting)")
        if self._stopping:
            problems.append("daemon stopping")
        problems.extend(self.unauthorized_problems())
        if self.store is None:
            problems.append("store not open")
        else:
            try:
                if not await self.store.check_writable():
                    problems.append("store not writable")
            except Exception as exc:
                problems.append(f"store not writable: {exc}")
        return (not problems, problems)

    async def _change_state(self, name: str, change: Callable[[Any], Any]) -> dict[str, Any]:
        runner = self._runner(name)
        if not self.can_act():
            raise NotLeaderError(
                "this daemon is a standby (or stepping down): send admin requests to the leader"
            )
        async with runner.lock:
            if runner.state is None:
                await runner.load()
            runner.state = change(runner.state)
            await runner.save_state()
        self._run_soon(name)
        return runner.status()

    async def pause(self, policy: str) -> dict[str, Any]:
        log.info("admin_pause", policy=policy)
        return await self._change_state(policy, lambda s: core.with_paused(s, True))

    async def resume(self, policy: str) -> dict[str, Any]:
        log.info("admin_resume", policy=policy)
        now = self.clock()
        return await self._change_state(policy, lambda s: core.with_paused(s, False, now))

    async def override(self, policy: str, replicas: int, duration: float) -> dict[str, Any]:
        runner = self._runner(policy)
        if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 1:
            raise ValueError(f"replicas must be a whole number >= 1, got {replicas!r}")
        if replicas > runner.policy.replicas.max:
            raise ValueError(
                f"replicas {replicas} is above the policy's replicas.max "
                f"{runner.policy.replicas.max}"
            )
        if not duration > 0:
            raise ValueError(f"duration must be > 0 seconds, got {duration!r}")
        until = self.clock() + float(duration)
        log.info("admin_override", policy=policy, replicas=replicas, until=iso(until))
        return await self._change_state(policy, lambda s: core.with_override(s, replicas, until))

    async def cancel_override(self, policy: str) -> dict[str, Any]:
        log.info("admin_cancel_override", policy=policy)
        return await self._change_state(policy, lambda s: core.with_override(s, None))

    async def history(
        self, policy: str, since: float | None, limit: int | None
    ) -> list[dict[str, Any]]:
        if self.store is None:
            raise ValueError("the store is not open yet")
        if self.history_buffer is not None:
            await self.history_buffer.flush()  # include the decisions of the last second
        entries = await self.store.decision_history(policy, since, limit)
        if not entries and policy not in self.runners:
            raise UnknownPolicyError(policy)
        return [{"t": e.t, "observation": e.observation, "decision": e.decision} for e in entries]

    async def activate(
        self, policy: str, origin: str | None = None, held: Mapping[str, int] | None = None
    ) -> dict[str, Any]:
        """A gateway holds requests for `policy`: evaluate it now instead of at its next
        interval, with the gateway's demand visible to its sources, so the policy's own
        activation rule (the core) decides. A standby notes the demand (it sees it if it
        becomes leader) and refuses with NotLeaderError (409)."""
        runner = self._runner(policy)
        if held and self.on_gateway_demand is not None:
            self.on_gateway_demand(origin or "gateway", held)
        if not self.can_act():
            raise NotLeaderError(
                "this daemon is a standby (or stepping down): send activation to the leader"
            )
        for key in runner.source_keys.values():
            self.sources.forget(key)
        await self._tracked(runner.evaluate(0.0))
        return runner.status()


def _keep_state(new: DaemonConfig, old: DaemonConfig) -> DaemonConfig:
    """The store stays the one the daemon opened; everything else follows the new file."""
    if new.state == old.state:
        return new
    import dataclasses

    return dataclasses.replace(new, state=old.state)


def _shown_url(url: str) -> str:
    from autoscaler.store.url import redact_url

    return redact_url(url)


def policies_by_name(policies: Sequence[Policy]) -> Mapping[str, Policy]:
    return {p.name: p for p in policies}
