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

from typing import NamedTuple

from autoscaler.policy.model import OnDeploymentFailure, OnMetricFailure

from . import reasons as R


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


_MAX_EXPONENT = 30  # 2**30 x any backoff is far beyond every max_backoff


def recreate_delay(rule: OnDeploymentFailure, attempts: int) -> float:
    """Seconds to wait before recreate attempt number `attempts + 1`."""
    return float(min(rule.max_backoff, rule.backoff * 2 ** min(attempts, _MAX_EXPONENT)))
