"""Record: the one place an evaluation's result is written down. Metrics (`Recorder`), one log
event per decision, the policy's /status entry (and `status`, which shows it), the decision
history (leader only) and whether the fast watch keeps polling it.

Nothing here feeds the next decision: the state the core needs, and the write-ahead intents,
are saved by the pass itself before the provider is called (`runner.py`, its docstring says
what is persisted when). A crash between the pass and this step loses a log line and a history
entry, never an action.

Log levels: an evaluation that acts, changes its reasons, or fails logs at info/warning; an
unchanged no-op decision logs at debug (one event per decision either way), and so does one
whose action fails again as before: a failure is said once (`repeats.py`), while metrics,
/status and the history keep every one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Protocol

import structlog

from autoscaler.core.reasons import PAUSED
from autoscaler.core.timefmt import duration, iso
from autoscaler.policy.model import Policy
from autoscaler.providers.base import ProviderError
from autoscaler.providers.http import GATED
from autoscaler.runtime import readable
from autoscaler.runtime.evaluation import Acted, EvaluationResult, IntentProgress, Reading
from autoscaler.runtime.repeats import Repeats
from autoscaler.runtime.runner_env import RunnerEnv, RunnerStatus
from autoscaler.store.base import Intent

log = structlog.get_logger("autoscaler.runner")


class Recorded(Protocol):
    """What recording reads and writes of a `runner.PolicyRunner` (a protocol: the runner
    calls this module, so this module does not import it)."""

    policy: Policy
    env: RunnerEnv
    status_info: RunnerStatus
    created_at: float | None
    pending: Intent | None
    source_keys: dict[str, str]
    source_health: dict[str, dict[str, Any]]
    source_errors: dict[str, str]
    last_logged: tuple[str, tuple[str, ...]] | None
    repeats: Repeats
    state: Any  # core.CoreState

    @property
    def name(self) -> str: ...

    def dry_run(self) -> bool: ...


def record(runner: Recorded, result: EvaluationResult) -> None:
    """Write down one pass."""
    if result.held is not None:
        runner.status_info.transition = f"pending {result.held} intent"
        return
    if result.intent is not None:
        _intent(runner, result.intent)
    if result.unobserved is not None:
        unobserved(runner, result.unobserved)
    if result.acted is not None:
        _decision(runner, result.acted)


def evaluated(runner: Recorded, seconds: float, lag: float) -> None:
    """Every pass, finished or not: counted, timed, its lag measured."""
    runner.status_info.evaluations += 1
    runner.env.recorder.evaluation(runner.name, seconds, lag)


def failed(runner: Recorded, exc: Exception) -> None:
    runner.status_info.last_error = f"{type(exc).__name__}: {exc}"
    log.exception("evaluation_failed", policy=runner.name, error=str(exc))


def unobserved(runner: Recorded, exc: ProviderError) -> None:
    runner.status_info.last_error = f"reading deployment: {exc}"
    # While the provider's Retry-After runs, every evaluation is refused locally: the 429
    # itself was logged, its repeats would be one line per interval.
    emit = log.debug if exc.code == GATED else log.warning
    emit(
        "deployment_read_failed",
        policy=runner.name,
        provider=runner.policy.deployment.provider,
        error=str(exc),
        permanent=exc.permanent,
    )


def readings(runner: Recorded, reads: tuple[Reading, ...]) -> None:
    """Source health for /status, one log line per new error and per recovery, metrics."""
    for r in reads:
        if r.error is None:
            if r.metric in runner.source_health:
                runner.source_health[r.metric]["failures_in_a_row"] = 0
            if r.metric in runner.source_errors:
                del runner.source_errors[r.metric]
                log.info("source_recovered", policy=runner.name, metric=r.metric)
        else:
            health = runner.source_health.setdefault(r.metric, {"failures_in_a_row": 0})
            health["last_error"] = r.error.message
            health["last_error_at"] = iso(runner.env.clock())
            health["failures_in_a_row"] += 1
            if runner.source_errors.get(r.metric) != r.error.message:
                runner.source_errors[r.metric] = r.error.message
                log.warning(
                    "source_read_failed",
                    policy=runner.name,
                    metric=r.metric,
                    source=runner.env.sources.describe(runner.source_keys.get(r.metric, "")),
                    error=r.error.message,
                    temporary=r.error.temporary,
                )
        runner.env.recorder.source_read(runner.name, r.metric, r.source, r.seconds, r.error is None)


def _intent(runner: Recorded, progress: IntentProgress) -> None:
    if progress.error is not None:
        runner.status_info.last_error = f"finishing {progress.kind}: {progress.error}"
        log.warning(
            "intent_retry_failed", policy=runner.name, kind=progress.kind, error=progress.error
        )
    elif progress.outcome is None:
        runner.env.set_fast_watch(runner.name, True)
    else:
        log.info(
            "intent_finished", policy=runner.name, kind=progress.kind, outcome=progress.outcome
        )


def _ready(runner: Recorded, acted: Acted) -> None:
    observed = acted.decided.observed
    if observed.ready_after is not None:
        runner.env.recorder.scale_from_zero(runner.name, observed.ready_after)
        log.info(
            "deployment_ready", policy=runner.name, seconds_since_decision=observed.ready_after
        )
    elif observed.not_ready_after is not None:
        waited, status = observed.not_ready_after, observed.observation.status
        log.error("deployment_not_ready", policy=runner.name, status=status, waited=waited)
        runner.status_info.last_error = (
            f"deployment not ready {duration(waited)} after create (status {status})"
        )
    if observed.replica_ready_after is not None:
        seconds = observed.replica_ready_after
        log.info("replica_ready", policy=runner.name, seconds_since_scale=seconds)


def _decision(runner: Recorded, acted: Acted) -> None:
    """Metrics, /status, the log event, the history and the fast watch for one decision."""
    readings(runner, acted.decided.observed.readings)
    _ready(runner, acted)
    if acted.attempted:
        runner.status_info.last_error = acted.error
    said = _failure(runner, acted)
    _metrics(runner, acted)
    entry = _status(runner, acted)
    _log(runner, acted, entry, said)
    if acted.decided.leading:  # one daemon's history: the leader's (the store is shared)
        _remember(runner, acted.decided.observed.now)
    _watch(runner, acted)


def _failure(runner: Recorded, acted: Acted) -> bool:
    """The `action_failed` / `action_recovered` lines (`repeats.py`); whether one was said."""
    d, now = acted.decided.decision, acted.decided.observed.now
    if acted.error is None:
        failures = runner.repeats.executed(d.action) if acted.executed else None
        if failures is not None:
            log.info("action_recovered", policy=runner.name, action=d.action, failures=failures)
        return failures is not None
    repeats = runner.repeats.failed(d.action, acted.error, now)
    if repeats is not None:
        log.error(
            "action_failed",
            policy=runner.name,
            action=d.action,
            replicas=d.replicas,
            error=acted.cause,
            permanent=acted.permanent,
            repeats=repeats,
        )
    return repeats is not None


def _metrics(runner: Recorded, acted: Acted) -> None:
    decided = acted.decided
    decision, observation = decided.decision, decided.observed.observation
    rec = runner.env.recorder
    rec.decision(runner.name, decision.action, decision.reasons)
    rec.replicas(runner.name, decision.replicas, observation.replicas)
    rec.dry_run(runner.name, decided.dry_run)
    rec.outcome(runner.name, decision.action, _outcome(runner, acted))
    price = runner.policy.cost.replica_hourly_usd
    rec.observed(
        runner.name,
        observation.status,
        observation.ready,
        observation.metrics,
        {m.name: m.target.value for m in runner.policy.metrics if m.target is not None},
        None if price is None else price * observation.replicas,
    )


def _status(runner: Recorded, acted: Acted) -> dict[str, Any]:
    decided = acted.decided
    decision, observation, now = (
        decided.decision,
        decided.observed.observation,
        decided.observed.now,
    )
    runner.status_info.last_observation = {
        "t": now,
        "status": observation.status,
        "replicas": observation.replicas,
        "ready_replicas": observation.ready,
        "metrics": dict(observation.metrics),
    }
    entry = decision.to_json(now)
    entry["desired"] = decision.desired
    entry["executed"] = acted.executed
    if decision.action != "none" and not decided.acting:
        entry["not_executed"] = "dry_run" if decided.dry_run else "standby"
    if acted.error:
        entry["error"] = acted.error
    runner.status_info.last_decision = entry
    return entry


def _log(runner: Recorded, acted: Acted, entry: dict[str, Any], failure_said: bool) -> None:
    """A decision whose action failed as it did before is an unchanged no-op: debug."""
    decision, observation = acted.decided.decision, acted.decided.observed.observation
    key = (decision.action, decision.reasons)
    level = "info" if decision.action != "none" or key != runner.last_logged else "debug"
    if acted.error:
        level = "warning" if failure_said else "debug"
    runner.last_logged = key
    getattr(log, level)(
        "decision",
        policy=runner.name,
        action=decision.action,
        replicas=decision.replicas,
        current=observation.replicas,
        status=observation.status,
        reasons=list(decision.reasons),
        message=decision.message,
        metrics=dict(observation.metrics),
        dry_run=acted.decided.dry_run,
        executed=entry["executed"],
    )


def _outcome(runner: Recorded, acted: Acted) -> str:
    """For metrics: what became of the decision (metrics.OUTCOMES)."""
    decision = acted.decided.decision
    if not runner.env.can_act():
        return "standby"  # first: a fleet counts outcome!="standby" once per decision
    if PAUSED in decision.reasons:
        return "paused"
    if decision.action == "none":
        return "no_action"
    if not acted.decided.acting:
        return "dry_run"
    return "failed" if acted.error else "executed"


def _remember(runner: Recorded, now: float) -> None:
    """Hand this decision and its observation (a `replay` input line) to the history."""
    if runner.env.record_history is None:
        return
    observation = dict(runner.status_info.last_observation or {})
    observation["t"] = now
    if observation.get("ready_replicas") is None:
        observation.pop("ready_replicas", None)
    observation["metrics"] = {
        k: (v if v is None or math.isfinite(v) else None)
        for k, v in (observation.get("metrics") or {}).items()
    }
    decision = dict(runner.status_info.last_decision or {})
    runner.env.record_history(runner.name, now, observation, decision)


def _watch(runner: Recorded, acted: Acted) -> None:
    """Poll fast while at zero (for work arriving) or while a change is in progress."""
    decision, observation = acted.decided.decision, acted.decided.observed.observation
    at_zero = runner.policy.scale_to_zero is not None and (
        (observation.status == "absent" and decision.action != "create")
        or (decision.action == "delete" and acted.error is None)
    )
    moving = runner.created_at is not None or runner.pending is not None
    if observation.status in ("initializing", "terminating"):
        moving = True
    runner.env.set_fast_watch(runner.name, at_zero or moving)


def status(runner: Recorded) -> dict[str, Any]:
    """For /status: times as ISO 8601 and durations as `4m10s` (readable.py)."""
    state = runner.state.to_dict() if runner.state is not None else None
    return {
        "deployment": runner.policy.deployment.name,
        "provider": runner.policy.deployment.provider,
        "last_observation": readable.stamped(runner.status_info.last_observation),
        "last_decision": readable.stamped(runner.status_info.last_decision),
        "state": readable.readable_state(state),
        "paused": _state_flag(state, "paused") or runner.policy.paused,
        "override": readable.override_view(state, runner.env.clock()),
        "dry_run": runner.dry_run(),
        "pending_intent": (
            None
            if runner.pending is None
            else {
                "id": runner.pending.id,
                "kind": runner.pending.kind,
                "created_at": iso(runner.pending.created_at),
            }
        ),
        "transition": runner.status_info.transition,
        "last_error": runner.status_info.last_error,
        "evaluations": runner.status_info.evaluations,
        "sources": {
            metric: {
                "last_error": None,
                "last_error_at": None,
                "failures_in_a_row": 0,
                **runner.source_health.get(metric, {}),
            }
            for metric in runner.source_keys
        },
    }


def _state_flag(state: Mapping[str, Any] | None, key: str) -> bool:
    return bool(state and state.get(key))
