"""One policy's evaluation, one pass: observe (metric sources + the deployment) -> decide (the
core) -> act (the provider, through the write-ahead intents of `actions.py`) -> record
(`record.py`: status, metrics, logs, history, the fast watch). Each step returns a frozen value
(`evaluation.py`) that the next one takes; the pass returns an `EvaluationResult` and
`record.record` is the one place that writes it down.

Lives here: `PolicyRunner` (the policy's memory between passes: core state, the unfinished
intent, when a create from zero was decided, the transition in progress; the pass itself; the
fast watch used while at zero or in transition; its /status entry). Observing the deployment
keeps its inference route, also across a restart mid-scale (`known_route.py`).
Must not live here: shared reads (`reads.py`), scheduling (`scheduling.py`), reload and
shutdown, provider write protocols (`actions.py`), reporting (`record.py`).

What is persisted when, and why (the crash tests in tests/runtime/test_runtime_crash_kill.py
kill the process at each named crash point):
1. decide: the new core state is saved (lease epoch attached) BEFORE any provider call
   (`after_state_saved`): the stabilization windows, idle clock and cooldowns the decision
   used must survive a crash in the action, or a restart would decide again from older state.
   This save is part of the write-ahead protocol, not reporting. A standby never saves: the
   leader owns the state.
2. act: every provider call is an intent committed first and resolved after
   (`actions.py`: `after_intent`, `after_call`, `after_resolve` ...); an unfinished one stays
   pending and is moved on first by the next pass (or by `reconcile.py` at start/election).
   When the action fails, the core's `action_failed` state (the backoff) is saved at once, so
   a restart does not retry early.
3. record: the decision history (leader only), metrics, logs and /status; nothing the next
   decision depends on.

Transitions never overlap: a per-policy lock serialises passes; while a provider action is
unfinished (a pending intent, a deployment initializing or terminating) the runner only moves
that action forward. A created deployment is not waited for inside the pass: the fast watch
(every `zero_poll_interval`) looks it up until it is `ready` (bounded by the profile's
`wait_ready_timeout`), so other policies keep running and /status shows `initializing`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any

from autoscaler import core
from autoscaler.core.types import DeploymentState, Observation
from autoscaler.core.zero import activations, activity
from autoscaler.policy.model import Policy
from autoscaler.providers.base import DeploymentInfo, Provider, ProviderError, SeenRoute
from autoscaler.runtime import actions, record
from autoscaler.runtime.actions import ActionAborted
from autoscaler.runtime.evaluation import (
    Acted,
    Decided,
    EvaluationResult,
    IntentProgress,
    Observed,
    Reading,
    observation_of,
)
from autoscaler.runtime.known_route import keep_route
from autoscaler.runtime.reads import DeploymentView, source_type, usable
from autoscaler.runtime.reconcile import continue_intent
from autoscaler.runtime.repeats import Repeats
from autoscaler.runtime.runner_env import RunnerEnv, RunnerStatus
from autoscaler.runtime.stored import load_core_state, read_stored, stored_record, stored_route
from autoscaler.sources.base import SourceError
from autoscaler.store.base import FencedError, Intent


@dataclass
class PolicyRunner:
    policy: Policy
    provider: Provider
    env: RunnerEnv
    view: DeploymentView | None = None  # shared list of the provider's deployments
    state: Any = None  # core.CoreState
    pending: Intent | None = None  # an unfinished intent this runner must finish first
    created_at: float | None = None  # decision time of a create from zero, until ready
    # Start-up measurement for the objective stage: (time, replicas) of the last scale-up
    # until a new replica is ready; a fresh measurement waits here for the next decision.
    scaled_at: tuple[float, int] | None = None
    startup_seconds: float | None = None
    status_info: RunnerStatus = field(default_factory=RunnerStatus)
    source_keys: dict[str, str] = field(default_factory=dict)  # metric name -> pool key
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    last_logged: tuple[str, tuple[str, ...]] | None = None  # record.py: log level
    repeats: Repeats = field(default_factory=Repeats)  # record.py: a failure said once
    source_errors: dict[str, str] = field(default_factory=dict)  # record.py: log once
    # metric -> {"last_error", "last_error_at" (ISO 8601), "failures_in_a_row"} for /status
    source_health: dict[str, dict[str, Any]] = field(default_factory=dict)
    route: SeenRoute | None = None  # saved with the state: module header

    @property
    def name(self) -> str:
        return self.policy.name

    # -- lifecycle ------------------------------------------------------------------------

    def attach_sources(self) -> None:
        for metric in self.policy.metrics:
            self.source_keys[metric.name] = self.env.sources.acquire(metric.source, metric.name)

    async def detach_sources(self) -> None:
        keys, self.source_keys = list(self.source_keys.values()), {}
        for key in keys:
            await self.env.sources.release(key)

    async def load(self) -> None:
        stored, problem = await read_stored(self.env.store, self.policy)
        self.state = load_core_state(self.policy, stored, problem, self.env.clock())
        self.route = stored_route(stored)
        await self._read_pending()

    async def _read_pending(self) -> None:
        """The oldest unfinished intent in the store, if any, is the one to finish first."""
        pending = await self.env.store.pending_intents(self.name)
        self.pending = min(pending, key=lambda i: i.id) if pending else None

    def dry_run(self) -> bool:
        return self.env.config().dry_run or self.policy.dry_run

    async def save_state(self) -> None:
        saved = stored_record(self.state, self.route)
        await self.env.store.save_state(self.name, saved, epoch=self.env.actions.epoch())

    # -- the pass -------------------------------------------------------------------------

    async def evaluate(self, lag: float = 0.0) -> EvaluationResult | None:
        """One pass, recorded. None when it did not finish (fenced, or a bug: reported)."""
        async with self.lock:
            started = time.perf_counter()
            result: EvaluationResult | None = None
            try:
                result = await self._pass()
                record.record(self, result)
            except FencedError as exc:
                await self.env.on_fenced(exc)
            except Exception as exc:
                # One policy's bug or outage must not stop the others; it is reported and
                # the next interval tries again.
                record.failed(self, exc)
            finally:
                record.evaluated(self, time.perf_counter() - started, lag)
            return result

    async def _pass(self) -> EvaluationResult:
        if self.state is None:
            await self.load()
        leading = self.env.can_act()
        acting = leading and not self.dry_run()
        progress: IntentProgress | None = None
        if self.pending is not None and not acting:
            await self._read_pending()  # the leader moves it on: observe again once it has
        if self.pending is not None:
            if not acting:
                return EvaluationResult(self.name, held=self.pending.kind)
            progress = await self._continue_pending()
            if not progress.resolved:
                return EvaluationResult(self.name, intent=progress)
        try:
            observed = await self._observe()
        except ProviderError as exc:
            return EvaluationResult(self.name, intent=progress, unobserved=exc)
        decided = await self._decide(observed, leading, acting)
        if decided.decision.action == "none" or not acting:
            return EvaluationResult(self.name, intent=progress, acted=Acted(decided))
        return EvaluationResult(self.name, intent=progress, acted=await self._act(decided))

    # -- observe --------------------------------------------------------------------------

    async def _observe(self) -> Observed:
        metrics_task = asyncio.ensure_future(self._read_metrics())
        try:
            deployment = await self._find()
        except ProviderError:
            metrics_task.cancel()
            raise
        readings = await metrics_task
        if deployment is not None:
            self.route = keep_route(self.provider, self.route, deployment)
        observation = observation_of(deployment, {r.metric: r.value for r in readings})
        now = self.env.clock()
        ready_after, not_ready_after = self._note_ready(observation, now)
        replica_ready_after = self._note_scaled(observation, now)
        if self.startup_seconds is not None:  # the core's objective stage learns from it
            observation = dataclasses.replace(observation, startup_seconds=self.startup_seconds)
            self.startup_seconds = None
        return Observed(
            now,
            deployment,
            observation,
            readings,
            ready_after,
            not_ready_after,
            replica_ready_after,
        )

    async def _read_metrics(self, names: list[str] | None = None) -> tuple[Reading, ...]:
        names = list(self.source_keys) if names is None else names
        return tuple(await asyncio.gather(*(self._read_one(n) for n in names)))

    async def _read_one(self, metric: str) -> Reading:
        key = self.source_keys[metric]
        started = time.perf_counter()
        source = source_type(key)
        try:
            value = await self.env.sources.read(key, self._source_max_age())
        except SourceError as exc:
            return Reading(metric, source, None, exc, time.perf_counter() - started)
        return Reading(metric, source, value, None, time.perf_counter() - started)

    def _source_max_age(self) -> float:
        """Policies sharing one source (one gateway exposition, one queue) reuse a read made
        within a tenth of their interval, at most 1 s: at a 15 s interval that is as fresh
        as a Prometheus scrape, and 10,000 policies cost one request a second instead of
        hundreds. Short test intervals (<= 0.5 s) get at most 50 ms."""
        return min(1.0, self.policy.interval / 10)

    async def _find(self, *, fresh: bool = False) -> DeploymentInfo | None:
        name = self.policy.deployment.name
        if self.view is None:
            found = await self.provider.find(name)
        else:
            # Fresh (fast watch): a list younger than half the zero-poll period will do, so
            # many policies in transition at once share one list instead of one list each.
            max_age = self.env.fast_poll() / 2 if fresh else None
            found = await self.view.find(name, max_age=max_age)
        return usable(name, found)

    def _patch(self, info: DeploymentInfo | None) -> None:
        if self.view is not None:
            self.view.patch(self.policy.deployment.name, info)

    def _note_ready(
        self, observation: Observation, now: float
    ) -> tuple[float | None, float | None]:
        """A deployment created from zero: (seconds until ready, None) when it is ready now,
        (None, seconds waited) when given up on after the profile's `wait_ready_timeout`;
        either way no longer in transition. (None, None) otherwise."""
        if self.created_at is None:
            return None, None
        waited = max(0.0, now - self.created_at)
        if observation.status == "ready":
            self.created_at, self.status_info.transition = None, None
            self.startup_seconds = waited
            return waited, None
        if waited > self.env.wait_ready_timeout(self.policy.deployment.provider):
            self.created_at, self.status_info.transition = None, None
            return None, waited
        return None, None

    def _note_scaled(self, observation: Observation, now: float) -> float | None:
        """A scale-up's start-up time: from the call to more replicas ready than before it.
        Returns the seconds when this observation completes the measurement."""
        if self.scaled_at is None:
            return None
        at, before = self.scaled_at
        if (
            observation.status in ("absent", "failed", "terminating")
            or observation.replicas <= before
        ):
            self.scaled_at = None  # scaled down or gone meanwhile: nothing to measure
        elif observation.status == "ready" and observation.ready > before:
            self.startup_seconds = max(0.0, now - at)
            self.scaled_at = None
            return self.startup_seconds
        elif now - at > self.env.wait_ready_timeout(self.policy.deployment.provider):
            self.scaled_at = None
        return None

    async def _continue_pending(self) -> IntentProgress:
        """Move the unfinished intent on (`reconcile.continue_intent`)."""
        # A local: an election-time reconcile may clear `self.pending` while we await.
        intent = self.pending
        assert intent is not None
        try:
            await self.env.actions.check_leader()
            outcome = await continue_intent(self.env.actions, intent, self.policy, self.provider)
        except (ProviderError, ActionAborted) as exc:
            if isinstance(exc, ProviderError) and self.pending is not None:
                await self._read_pending()  # resolved as failed when the create itself failed
            return IntentProgress(intent.kind, error=str(exc))
        if outcome is None:
            self.status_info.transition = f"{intent.kind} in progress"
            return IntentProgress(intent.kind)
        if intent.kind in ("create", "recreate") and self.created_at is None:
            self.created_at = self.env.clock()
        self.pending = None
        self.status_info.transition = None
        return IntentProgress(intent.kind, outcome=outcome)

    # -- decide ---------------------------------------------------------------------------

    async def _decide(self, observed: Observed, leading: bool, acting: bool) -> Decided:
        decision, self.state = core.decide(
            self.policy, self.state, observed.observation, observed.now
        )
        if leading:  # a standby never writes: the leader owns the state
            await self.save_state()  # write-ahead (module docstring, 1.)
            actions.crash_point("after_state_saved")
        return Decided(observed, decision, leading, acting, self.dry_run())

    # -- act ------------------------------------------------------------------------------

    async def _act(self, decided: Decided) -> Acted:
        """Carry the decision out through the write-ahead intents (module docstring, 2.)."""
        decision, now = decided.decision, decided.observed.now
        deployment = decided.observed.deployment
        try:
            await self._call(decided)
        except (ProviderError, ActionAborted) as exc:
            if decision.action == "create" and deployment is None:
                self.created_at = None  # nothing was created: not in transition
                self.status_info.transition = None
            permanent = isinstance(exc, ActionAborted) or exc.permanent
            self.state = core.action_failed(self.state, decision, now)
            await self.save_state()  # the backoff survives a restart
            return Acted(decided, True, f"{decision.action} failed: {exc}", str(exc), permanent)
        return Acted(decided, attempted=True)

    async def _call(self, decided: Decided) -> None:
        ctx, decision, now = self.env.actions, decided.decision, decided.observed.now
        deployment = decided.observed.deployment
        if decision.action == "scale" and deployment is not None:
            self._patch(
                await actions.scale(ctx, self.policy, self.provider, deployment, decision.replicas)
            )
            if decision.replicas > deployment.replicas and self.scaled_at is None:
                self.scaled_at = (now, deployment.replicas)
        elif decision.action == "delete" and deployment is not None:
            await actions.delete_to_zero(ctx, self.policy, self.provider, deployment)
            self._patch(_terminating(deployment))
        elif decision.action == "create" and deployment is not None:
            if deployment.status != "failed":
                raise ActionAborted(f"create asked while the deployment is {deployment.status}")
            self.pending = await actions.begin_recreate(
                ctx, self.policy, self.provider, deployment, max(1, decision.replicas)
            )
            self._patch(_terminating(deployment))
            self.status_info.transition = "recreating"
            self.created_at = now
        elif decision.action == "create":
            # In transition from the decision on, not from when the create returns: until
            # then /status (and anyone waiting for "ready again") must not read the last
            # observation, made before the create, as the new deployment's.
            self.created_at = now
            self.status_info.transition = "creating"
            self._patch(
                await actions.create(ctx, self.policy, self.provider, max(1, decision.replicas))
            )
            self.status_info.transition = "initializing"
        else:
            status = decided.observed.observation.status
            raise ActionAborted(f"{decision.action} asked but the deployment is {status}")

    # -- fast watch -----------------------------------------------------------------------

    async def fast_watch(self) -> None:
        """Every `zero_poll_interval` while at zero or in transition: evaluate at once when
        work arrives (the core's activation rule says so) or when the deployment's status
        moves (created -> ready, terminating -> gone)."""
        if self.lock.locked():
            return
        last = (self.status_info.last_observation or {}).get("status")
        try:
            if self.pending is not None:
                await self.evaluate()
            elif self.created_at is not None or last in ("initializing", "terminating"):
                found = await self._find(fresh=True)
                if (found.status if found else "absent") != last:
                    await self.evaluate()
            elif self.policy.scale_to_zero is not None and await self._activation_seen():
                await self.evaluate()
        except ProviderError as exc:
            record.unobserved(self, exc)

    async def _activation_seen(self) -> bool:
        """Reads the activation metrics and asks the core (`core.zero.activity`): the same
        rule the decision applies, so the watch wakes the pass exactly when it would create."""
        names = [a.metric for a in activations(self.policy) if a.metric in self.source_keys]
        readings = await self._read_metrics(names)
        record.readings(self, readings)
        active, _text = activity(self.policy, {r.metric: r.value for r in readings})
        return active

    # -- status ---------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """For /status (`record.status`)."""
        return record.status(self)


def _terminating(deployment: DeploymentInfo) -> DeploymentInfo:
    state = DeploymentState("terminating", deployment.replicas, 0)
    return dataclasses.replace(deployment, state=state)
