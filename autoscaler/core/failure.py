"""What to do when metrics keep failing (KEDA's `fallback`) or the deployment failed.

Metric failures: after `on_metric_failure.after` consecutive evaluations with any failed
metric, `hold` keeps the current count and `replicas` goes to the fallback count. A fallback
below the current count holds instead: invariant 5 (failed metrics never cause a scale-down)
outranks KEDA's habit of scaling down to the fallback.

Deployment failure (`on_deployment_failure`): `report` only, or `recreate` once an exponential
backoff has passed: `backoff` x 2^attempts, capped at `max_backoff`, counted from the first
evaluation that saw this failure.
"""

from __future__ import annotations

from typing import Final, NamedTuple

from autoscaler.policy.model import OnDeploymentFailure, OnMetricFailure

from . import reasons as R
from .clamp import clamp
from .proposal import Context, Proposal, consecutive_failures
from .stabilize import record
from .state import CoreState, evolve
from .timefmt import duration
from .types import Decision


class FailureRule(NamedTuple):
    replicas: int
    reason: str
    message: str


def metric_failure_rule(
    rule: OnMetricFailure, consecutive: int, current: int, failed: tuple[str, ...]
) -> FailureRule | None:
    """The failure rule's verdict, or None while it does not apply yet."""
    if consecutive < rule.after or not failed:
        return None
    names = ",".join(failed)
    if rule.action == "replicas" and rule.replicas is not None:
        target = max(current, rule.replicas)
        note = "" if target == rule.replicas else f" (no scale down below {current})"
        return FailureRule(
            target,
            R.FALLBACK,
            f"{names} failed {consecutive} times in a row: fallback to {rule.replicas}{note}",
        )
    return FailureRule(
        current,
        R.METRIC_FAILURE_HOLD,
        f"{names} failed {consecutive} times in a row: hold at {current}",
    )


_MAX_EXPONENT: Final = 30  # 2**30 x any backoff is far beyond every max_backoff


def recreate_delay(rule: OnDeploymentFailure, attempts: int) -> float:
    """Seconds to wait before recreate attempt number `attempts + 1`."""
    return float(min(rule.max_backoff, rule.backoff * 2 ** min(attempts, _MAX_EXPONENT)))


# --- the stages -----------------------------------------------------------------------------


def metric_failure_stage(ctx: Context, p: Proposal) -> Proposal:
    """Stage: once reads have failed `on_metric_failure.after` times in a row, the rule's
    count replaces the recommendation (which is still recorded, when it is a real one, so the
    windows stay true) and no stabilization applies."""
    if p.settled or not p.failed:
        return p
    rule = metric_failure_rule(
        ctx.policy.on_metric_failure, consecutive_failures(ctx, p), ctx.current, p.failed
    )
    if rule is None:
        return p
    now = ctx.now
    behavior = ctx.policy.behavior
    value = p.desired if p.remember else None
    up = record(p.up_history, now, behavior.scale_up.stabilization_window, value, False)
    down = record(p.down_history, now, behavior.scale_down.stabilization_window, value, True)
    p = p.moved(rule.replicas, (*p.reasons, rule.reason), (*p.parts, rule.message), up, down)
    return p._replace(ruled=True)


def deployment_failure(ctx: Context) -> tuple[Decision, CoreState]:
    """The status gate's `failure` row: report, or recreate once the backoff has passed."""
    policy, state, now, current = ctx.policy, ctx.state, ctx.now, ctx.current
    rule = policy.on_deployment_failure
    failed_since = state.failed_since if state.failed_since is not None else now
    waiting = evolve(state, failed_since=failed_since)
    if rule.action != "recreate":
        text = "deployment failed (on_deployment_failure: report)"
        return Decision("none", current, (R.DEPLOYMENT_FAILED,), text), waiting
    if policy.deployment.create is None:
        text = "deployment failed; cannot recreate: the policy has no deployment.create"
        return Decision("none", current, (R.DEPLOYMENT_FAILED, R.NO_CREATE_SPEC), text), waiting
    delay = recreate_delay(rule, state.recreates)
    waited = now - failed_since
    attempt = state.recreates + 1
    if waited < delay:
        text = (
            f"deployment failed {duration(waited)} ago; recreate attempt {attempt} "
            f"after {duration(delay)}"
        )
        return Decision("none", current, (R.DEPLOYMENT_FAILED, R.RECREATE_BACKOFF), text), waiting
    count = clamp(max(current, 1), ctx.bounds).replicas
    text = (
        f"deployment failed {duration(waited)} ago: delete and create again with {count} "
        f"(attempt {attempt})"
    )
    decision = Decision("create", count, (R.DEPLOYMENT_FAILED, R.RECREATE), text)
    return decision, evolve(
        state,
        failed_since=None,
        recreates=attempt,
        last_action=(now, "create"),
        prev_action=state.last_action,
    )
