"""One policy's evaluation: observe (metric sources + the deployment), decide (the core),
act (through `actions.py`), record (store, Recorder, one log event).

Lives here: `PolicyRunner` (per-policy state, the evaluation, the fast watch used while at
zero or in transition), `SourcePool` (source instances shared by identical specs, one read
in flight per source), and the thin adapter over the core's functions.
Must not live here: scheduling (`scheduling.py`), reload/shutdown, provider write protocols.

Transitions never overlap: a per-policy lock serialises evaluations; while a provider action
is unfinished (a pending intent, a deployment initializing or terminating) the runner only
moves that action forward. A created deployment is not waited for inside the evaluation:
the fast watch (every `zero_poll_interval`) looks it up until it is `ready` (bounded by the
profile's `wait_ready_timeout`), so other policies keep running and /status shows
`initializing` meanwhile.

Log levels: an evaluation that acts, changes its reasons, or fails logs at info/warning; an
unchanged no-op decision logs at debug (one event per decision either way).
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog

from autoscaler import core
from autoscaler.core.types import Decision, Observation
from autoscaler.policy.model import MetricSource, Policy
from autoscaler.providers.base import DeploymentInfo, Provider, ProviderError
from autoscaler.runtime import actions
from autoscaler.runtime.actions import ActionAborted, ActionContext
from autoscaler.runtime.control import Recorder
from autoscaler.runtime.reconcile import continue_intent
from autoscaler.sources.base import Source, SourceError
from autoscaler.store.base import FencedError, Intent, Store

log = structlog.get_logger("autoscaler.runner")

SourceFactory = Callable[..., Source]


# --- sources ---------------------------------------------------------------------------------


@dataclass
class _PooledSource:
    source: Source
    refs: int = 0
    inflight: asyncio.Task[float] | None = None
    value: float | None = None  # the last successful read ...
    read_at: float = -math.inf  # ... and when it completed (monotonic)


class SourcePool:
    """Source instances keyed by their spec: policies reading the same queue or exposition
    share one client, and concurrent reads of it share one request (single flight)."""

    def __init__(self, factory: SourceFactory, *, max_concurrent_reads: int = 64) -> None:
        self._factory = factory
        self._entries: dict[str, _PooledSource] = {}
        self._limit = asyncio.Semaphore(max_concurrent_reads)

    @staticmethod
    def key(spec: MetricSource) -> str:
        return repr(spec)

    def acquire(self, spec: MetricSource, name: str) -> str:
        key = self.key(spec)
        entry = self._entries.get(key)
        if entry is None:
            entry = _PooledSource(self._factory(spec, name=name))
            self._entries[key] = entry
        entry.refs += 1
        return key

    async def release(self, key: str) -> None:
        entry = self._entries.get(key)
        if entry is None:
            return
        entry.refs -= 1
        if entry.refs <= 0:
            del self._entries[key]
            await _close_quietly(entry.source)

    async def read(self, key: str, max_age: float = 0.0) -> float:
        """A value read at most `max_age` seconds ago (0: a read that starts now, or the one
        in flight). Only successful reads are reused; a failure is never cached."""
        entry = self._entries[key]
        if entry.value is not None and time.monotonic() - entry.read_at <= max_age:
            return entry.value
        task = entry.inflight
        if task is None or task.done():
            task = asyncio.ensure_future(self._read_bounded(entry))
            entry.inflight = task
        return await asyncio.shield(task)

    async def _read_bounded(self, entry: _PooledSource) -> float:
        async with self._limit:
            value = await entry.source.read()
        entry.value, entry.read_at = value, time.monotonic()
        return value

    def describe(self, key: str) -> str:
        entry = self._entries.get(key)
        return entry.source.describe if entry else "?"

    async def aclose(self) -> None:
        entries, self._entries = list(self._entries.values()), {}
        for entry in entries:
            if entry.inflight is not None and not entry.inflight.done():
                entry.inflight.cancel()
            await _close_quietly(entry.source)


async def _close_quietly(closable: Any) -> None:
    try:
        await closable.aclose()
    except Exception as exc:  # closing is best effort; a broken client must not stop others
        log.warning("close_failed", what=repr(closable), error=str(exc))


# --- deployments ------------------------------------------------------------------------------


class DeploymentView:
    """One provider's deployments, listed once and shared by every policy on that provider.

    Providers like NeevCloud have no lookup by name: `find` is a full (paginated) list. With
    thousands of policies on one account, one list per evaluation would be thousands of pages
    per second; instead one list is shared by every evaluation for `max_age` seconds, and
    concurrent lookups share one list in flight. `max_age` 0 (few policies) still shares the
    in-flight list. The daemon's own actions patch the view at once, and every provider write
    path looks the name up directly again first (`actions.create`), so a stale view can delay
    a decision by at most `max_age` but never duplicate a deployment.
    """

    def __init__(
        self, provider: Provider, max_age: float = 0.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.provider = provider
        self.max_age = max_age
        self._clock = clock
        self._by_name: dict[str, DeploymentInfo] = {}
        self._listed_at = -math.inf
        self._inflight: asyncio.Task[None] | None = None

    async def find(self, name: str, *, max_age: float | None = None) -> DeploymentInfo | None:
        """`max_age` tighter than the view's own (the fast watch wants fresher news)."""
        limit = self.max_age if max_age is None else min(max_age, self.max_age)
        if self._clock() - self._listed_at > limit:
            await self._refresh()
        return self._by_name.get(name)

    async def _refresh(self) -> None:
        task = self._inflight
        if task is None or task.done():
            task = asyncio.ensure_future(self._list())
            self._inflight = task
        await asyncio.shield(task)

    async def _list(self) -> None:
        started = self._clock()
        deployments = await self.provider.list()
        by_name: dict[str, DeploymentInfo] = {}
        for dep in deployments:
            # Never two with one name; a dying one beside a live one: the live one counts.
            held = by_name.get(dep.name)
            if held is None or held.status == "terminating":
                by_name[dep.name] = dep
        self._by_name = by_name
        self._listed_at = started

    def patch(self, name: str, info: DeploymentInfo | None) -> None:
        """What our own action just did, before the next list shows it."""
        if info is None:
            self._by_name.pop(name, None)
        else:
            self._by_name[name] = info


# --- the core, seen from here ----------------------------------------------------------------


def load_core_state(policy: Policy, stored: Mapping[str, Any] | None, now: float) -> Any:
    if stored and isinstance(stored.get("core"), Mapping):
        try:
            return core.CoreState.from_dict(dict(stored["core"]))
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("state_unreadable", policy=policy.name, error=str(exc))
    return core.initial_state(policy)


# --- the runner ------------------------------------------------------------------------------


@dataclass
class RunnerEnv:
    """What every runner shares, provided by the daemon."""

    store: Store
    recorder: Recorder
    clock: Callable[[], float]  # unix seconds; the core's `now`
    actions: ActionContext
    sources: SourcePool
    global_dry_run: Callable[[], bool]
    can_act: Callable[[], bool]  # leader (or no election)
    set_fast_watch: Callable[[str, bool], None]
    run_soon: Callable[[str], None]
    on_fenced: Callable[[FencedError], Awaitable[None]]
    wait_ready_timeout: Callable[[str], float]  # provider profile -> bound
    fast_poll: Callable[[], float] = lambda: 2.0  # zero_poll_interval, seconds


@dataclass
class RunnerStatus:
    last_observation: dict[str, Any] | None = None
    last_decision: dict[str, Any] | None = None
    last_error: str | None = None
    transition: str | None = None  # "initializing", "recreating", ...
    evaluations: int = 0


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
    _last_logged: tuple[str, tuple[str, ...]] | None = None
    _source_errors: dict[str, str] = field(default_factory=dict)

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
        stored = await self.env.store.load_state(self.name)
        self.state = load_core_state(self.policy, stored, self.env.clock())
        pending = await self.env.store.pending_intents(self.name)
        self.pending = min(pending, key=lambda i: i.id) if pending else None

    def dry_run(self) -> bool:
        return self.env.global_dry_run() or self.policy.dry_run

    async def save_state(self) -> None:
        await self.env.store.save_state(
            self.name, {"core": self.state.to_dict()}, epoch=self.env.actions.epoch()
        )

    # -- evaluation -----------------------------------------------------------------------

    async def evaluate(self, lag: float = 0.0) -> None:
        async with self.lock:
            started = time.perf_counter()
            try:
                await self._evaluate()
            except FencedError as exc:
                await self.env.on_fenced(exc)
            except Exception as exc:
                # One policy's bug or outage must not stop the others; it is reported and
                # the next interval tries again.
                self.status_info.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("evaluation_failed", policy=self.name, error=str(exc))
            finally:
                self.status_info.evaluations += 1
                self.env.recorder.evaluation(self.name, time.perf_counter() - started, lag)

    async def _read_metrics(self) -> dict[str, float | None]:
        names = list(self.source_keys)
        results = await asyncio.gather(*(self._read_one(n) for n in names))
        return dict(zip(names, results, strict=True))

    async def _read_one(self, metric: str) -> float | None:
        key = self.source_keys[metric]
        started = time.perf_counter()
        source_type = key.split("(", 1)[0]
        try:
            value: float | None = await self.env.sources.read(key, self._source_max_age())
            ok = True
            if metric in self._source_errors:
                del self._source_errors[metric]
                log.info("source_recovered", policy=self.name, metric=metric)
        except SourceError as exc:
            value, ok = None, False
            if self._source_errors.get(metric) != exc.message:
                self._source_errors[metric] = exc.message
                log.warning(
                    "source_read_failed",
                    policy=self.name,
                    metric=metric,
                    source=self.env.sources.describe(key),
                    error=exc.message,
                    temporary=exc.temporary,
                )
        self.env.recorder.source_read(
            self.name, metric, _source_type(source_type), time.perf_counter() - started, ok
        )
        return value

    def _source_max_age(self) -> float:
        """Policies sharing one source (one gateway exposition, one queue) reuse a read made
        within a tenth of their interval, at most 1 s: at a 15 s interval that is as fresh
        as a Prometheus scrape, and 10,000 policies cost one request a second instead of
        hundreds. Short test intervals (<= 0.5 s) get at most 50 ms."""
        return min(1.0, self.policy.interval / 10)

    async def _evaluate(self) -> None:
        if self.state is None:
            await self.load()
        acting = self.env.can_act() and not self.dry_run()
        if self.pending is not None:
            if not acting:
                self.status_info.transition = f"pending {self.pending.kind} intent"
                return
            if not await self._continue_pending():
                return

        metrics_task = asyncio.ensure_future(self._read_metrics())
        try:
            deployment = await self._find()
        except ProviderError as exc:
            metrics_task.cancel()
            self._observe_failed(exc)
            return
        metrics = await metrics_task
        observation = observe(deployment, metrics)
        now = self.env.clock()
        self._note_ready(observation, now)
        self._note_scaled(observation, now)
        if self.startup_seconds is not None:
            observation = dataclasses.replace(observation, startup_seconds=self.startup_seconds)
            self.startup_seconds = None

        decision, self.state = core.decide(self.policy, self.state, observation, now)
        if self.env.can_act():  # a standby never writes: the leader owns the state
            await self.save_state()
            actions.crash_point("after_state_saved")

        acted_error: str | None = None
        if decision.action != "none" and acting:
            acted_error = await self._act(decision, deployment, observation, now)
        self._record(decision, observation, now, acted_error, acting)
        self._update_watch(decision, observation, acted_error)

    async def _find(self, *, fresh: bool = False) -> DeploymentInfo | None:
        if self.view is None:
            return await self.provider.find(self.policy.deployment.name)
        # Fresh (fast watch): a list younger than half the zero-poll period will do, so many
        # policies in transition at once share one list instead of one list each.
        max_age = self.env.fast_poll() / 2 if fresh else None
        return await self.view.find(self.policy.deployment.name, max_age=max_age)

    def _patch(self, info: DeploymentInfo | None) -> None:
        if self.view is not None:
            self.view.patch(self.policy.deployment.name, info)

    async def _continue_pending(self) -> bool:
        """Move the unfinished intent on. True when it is resolved (evaluate normally)."""
        # A local: an election-time reconcile may clear `self.pending` while we await.
        intent = self.pending
        assert intent is not None
        try:
            await self.env.actions.check_leader()
            outcome = await continue_intent(self.env.actions, intent, self.policy, self.provider)
        except (ProviderError, ActionAborted) as exc:
            self.status_info.last_error = f"finishing {intent.kind}: {exc}"
            log.warning("intent_retry_failed", policy=self.name, kind=intent.kind, error=str(exc))
            if isinstance(exc, ProviderError) and self.pending is not None:
                # continue_intent resolved it as failed when the create itself failed
                still = await self.env.store.pending_intents(self.name)
                self.pending = min(still, key=lambda i: i.id) if still else None
            return False
        if outcome is None:
            self.status_info.transition = f"{intent.kind} in progress"
            self.env.set_fast_watch(self.name, True)
            return False
        log.info("intent_finished", policy=self.name, kind=intent.kind, outcome=outcome)
        if intent.kind in ("create", "recreate") and self.created_at is None:
            self.created_at = self.env.clock()
        self.pending = None
        self.status_info.transition = None
        return True

    def _observe_failed(self, exc: ProviderError) -> None:
        self.status_info.last_error = f"reading deployment: {exc}"
        log.warning(
            "deployment_read_failed",
            policy=self.name,
            provider=self.policy.deployment.provider,
            error=str(exc),
            permanent=exc.permanent,
        )

    def _note_ready(self, observation: Observation, now: float) -> None:
        if self.created_at is None:
            return
        if observation.status == "ready":
            seconds = max(0.0, now - self.created_at)
            self.env.recorder.scale_from_zero(self.name, seconds)
            log.info("deployment_ready", policy=self.name, seconds_since_decision=seconds)
            self.startup_seconds = seconds
            self.created_at = None
            self.status_info.transition = None
        elif now - self.created_at > self.env.wait_ready_timeout(self.policy.deployment.provider):
            log.error(
                "deployment_not_ready",
                policy=self.name,
                status=observation.status,
                waited=now - self.created_at,
            )
            self.status_info.last_error = (
                f"deployment not ready {now - self.created_at:.0f}s after create "
                f"(status {observation.status})"
            )
            self.created_at = None
            self.status_info.transition = None

    def _note_scaled(self, observation: Observation, now: float) -> None:
        """A scale-up's start-up time: from the call to more replicas ready than before it."""
        if self.scaled_at is None:
            return
        at, before = self.scaled_at
        if (
            observation.status in ("absent", "failed", "terminating")
            or observation.replicas <= before
        ):
            self.scaled_at = None  # scaled down or gone meanwhile: nothing to measure
        elif observation.status == "ready" and observation.ready > before:
            self.startup_seconds = max(0.0, now - at)
            log.info("replica_ready", policy=self.name, seconds_since_scale=self.startup_seconds)
            self.scaled_at = None
        elif now - at > self.env.wait_ready_timeout(self.policy.deployment.provider):
            self.scaled_at = None

    async def _act(
        self,
        decision: Decision,
        deployment: DeploymentInfo | None,
        observation: Observation,
        now: float,
    ) -> str | None:
        """Carry the decision out. Returns an error message, or None on success."""
        ctx = self.env.actions
        try:
            if decision.action == "scale" and deployment is not None:
                self._patch(
                    await actions.scale(
                        ctx, self.policy, self.provider, deployment, decision.replicas
                    )
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
                self._patch(
                    await actions.create(ctx, self.policy, self.provider, max(1, decision.replicas))
                )
                self.created_at = now
                self.status_info.transition = "initializing"
            else:
                raise ActionAborted(
                    f"{decision.action} asked but the deployment is {observation.status}"
                )
        except FencedError:
            raise
        except (ProviderError, ActionAborted) as exc:
            permanent = isinstance(exc, ActionAborted) or exc.permanent
            message = f"{decision.action} failed: {exc}"
            self.status_info.last_error = message
            log.error(
                "action_failed",
                policy=self.name,
                action=decision.action,
                replicas=decision.replicas,
                error=str(exc),
                permanent=permanent,
            )
            self.state = core.action_failed(self.state, decision, now)
            await self.save_state()
            return message
        self.status_info.last_error = None
        return None

    def _record(
        self,
        decision: Decision,
        observation: Observation,
        now: float,
        acted_error: str | None,
        acting: bool,
    ) -> None:
        rec = self.env.recorder
        rec.decision(self.name, decision.action, decision.reasons)
        rec.replicas(self.name, decision.replicas, observation.replicas)
        rec.dry_run(self.name, self.dry_run())
        self.status_info.last_observation = {
            "t": now,
            "status": observation.status,
            "replicas": observation.replicas,
            "ready_replicas": observation.ready,
            "metrics": dict(observation.metrics),
        }
        entry = decision.to_json(now)
        entry["desired"] = decision.desired
        entry["executed"] = decision.action != "none" and acting and acted_error is None
        if decision.action != "none" and not acting:
            entry["not_executed"] = "dry_run" if self.dry_run() else "standby"
        if acted_error:
            entry["error"] = acted_error
        self.status_info.last_decision = entry
        key = (decision.action, decision.reasons)
        level = "info" if decision.action != "none" or key != self._last_logged else "debug"
        if acted_error:
            level = "warning"
        self._last_logged = key
        getattr(log, level)(
            "decision",
            policy=self.name,
            action=decision.action,
            replicas=decision.replicas,
            current=observation.replicas,
            status=observation.status,
            reasons=list(decision.reasons),
            message=decision.message,
            metrics=dict(observation.metrics),
            dry_run=self.dry_run(),
            executed=entry["executed"],
        )

    def _update_watch(
        self, decision: Decision, observation: Observation, acted_error: str | None
    ) -> None:
        at_zero = self.policy.scale_to_zero is not None and (
            (observation.status == "absent" and decision.action != "create")
            or (decision.action == "delete" and acted_error is None)
        )
        moving = self.created_at is not None or self.pending is not None
        if observation.status in ("initializing", "terminating"):
            moving = True
        self.env.set_fast_watch(self.name, at_zero or moving)

    # -- fast watch -----------------------------------------------------------------------

    async def fast_watch(self) -> None:
        """Every `zero_poll_interval` while at zero or in transition: evaluate at once when
        work arrives (an activation metric above its threshold) or when the deployment's
        status moves (created -> ready, terminating -> gone)."""
        if self.lock.locked():
            return
        last = self.status_info.last_observation or {}
        try:
            if self.pending is not None or self.created_at is not None:
                if self.pending is not None:
                    await self.evaluate()
                    return
                found = await self._find(fresh=True)
                status = found.status if found else "absent"
                if status != last.get("status"):
                    await self.evaluate()
                return
            if last.get("status") in ("initializing", "terminating"):
                found = await self._find(fresh=True)
                if (found.status if found else "absent") != last.get("status"):
                    await self.evaluate()
                return
            if self.policy.scale_to_zero is not None and await self._activation_seen():
                await self.evaluate()
        except ProviderError as exc:
            self._observe_failed(exc)

    async def _activation_seen(self) -> bool:
        assert self.policy.scale_to_zero is not None
        activations = self.policy.scale_to_zero.activation
        if not activations:
            # No explicit activation metric: any metric above zero counts as work.
            names = list(self.source_keys)
            thresholds = dict.fromkeys(names, 0.0)
        else:
            thresholds = {a.metric: a.threshold for a in activations}
        for metric, threshold in thresholds.items():
            if metric not in self.source_keys:
                continue
            value = await self._read_one(metric)
            if value is not None and value > threshold:
                return True
        return False

    # -- status ---------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        state = self.state.to_dict() if self.state is not None else None
        return {
            "deployment": self.policy.deployment.name,
            "provider": self.policy.deployment.provider,
            "last_observation": self.status_info.last_observation,
            "last_decision": self.status_info.last_decision,
            "state": state,
            "paused": _state_flag(state, "paused") or self.policy.paused,
            "override": _state_value(state, "override"),
            "dry_run": self.dry_run(),
            "pending_intent": (
                None
                if self.pending is None
                else {
                    "id": self.pending.id,
                    "kind": self.pending.kind,
                    "created_at": self.pending.created_at,
                }
            ),
            "transition": self.status_info.transition,
            "last_error": self.status_info.last_error,
            "evaluations": self.status_info.evaluations,
        }


def _terminating(deployment: DeploymentInfo) -> DeploymentInfo:
    return dataclasses.replace(deployment, status="terminating", ready_replicas=0)


def observe(deployment: DeploymentInfo | None, metrics: Mapping[str, float | None]) -> Observation:
    if deployment is None:
        return Observation(status="absent", replicas=0, metrics=dict(metrics))
    return Observation(
        status=deployment.status,
        replicas=deployment.replicas,
        metrics=dict(metrics),
        ready_replicas=deployment.ready_replicas,
    )


def _source_type(repr_prefix: str) -> str:
    """`RedisSource(...)` -> `redis` (a fixed label value for metrics)."""
    name = repr_prefix.removesuffix("Source").lower()
    return {"promql": "promql", "httpjson": "http_json", "rabbitmq": "rabbitmq"}.get(name, name)


def _state_flag(state: Mapping[str, Any] | None, key: str) -> bool:
    return bool(state and state.get(key))


def _state_value(state: Mapping[str, Any] | None, key: str) -> Any:
    return state.get(key) if state else None
