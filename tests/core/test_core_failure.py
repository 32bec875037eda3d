"""Metric failure rule (hold / KEDA fallback) and deployment failure (report / recreate with
exponential backoff), through `decide`."""

from __future__ import annotations

import pytest

from autoscaler.core import CoreState, decide, initial_state
from autoscaler.core import reasons as R
from autoscaler.core.failure import deployment_failure, metric_failure_stage, recreate_delay
from autoscaler.core.proposal import Recommendation
from autoscaler.core.types import DeploymentState, Observation
from autoscaler.policy.model import OnDeploymentFailure, OnMetricFailure

from .builders import T0, context, metric, policy, proposal, ready, rules

TWO = (metric("a"), metric("b"))


def test_scale_up_on_the_rest_until_the_rule_applies_then_hold() -> None:
    p = policy(
        metrics=TWO,
        max=20,
        scale_up=rules(),  # no rate limit: the formulas show through
        on_metric_failure=OnMetricFailure(after=3, action="hold"),
    )
    s = initial_state()
    d1, s = decide(p, s, ready(2, a=40.0, b=None), T0)
    assert (d1.action, d1.replicas) == ("scale", 8)
    d2, s = decide(p, s, ready(8, a=60.0, b=None), T0 + 15)
    assert d2.replicas == 12
    d3, s = decide(p, s, ready(12, a=99.0, b=None), T0 + 30)  # third in a row: hold
    assert (d3.action, d3.replicas, d3.reasons) == ("none", 12, (R.METRIC_FAILURE_HOLD,))
    assert "b failed 3 times in a row" in d3.message
    d4, s = decide(p, s, ready(12, a=99.0, b=1.0), T0 + 45)  # healed: counter resets
    assert s.metric_failures == 0 and d4.replicas == 20


def test_fallback_raises_to_the_fallback_count() -> None:
    p = policy(metrics=TWO, on_metric_failure=OnMetricFailure(2, "replicas", 6))
    s = initial_state()
    _, s = decide(p, s, ready(2, a=None, b=None), T0)
    d, s = decide(p, s, ready(2, a=None, b=None), T0 + 15)
    assert (d.action, d.replicas, d.reasons) == ("scale", 6, (R.SCALE_UP, R.FALLBACK))


def test_fallback_below_current_holds_instead_of_scaling_down() -> None:
    p = policy(metrics=TWO, on_metric_failure=OnMetricFailure(1, "replicas", 2))
    d, _ = decide(p, initial_state(), ready(8, a=None, b=1.0), T0)
    assert (d.action, d.replicas) == ("none", 8)
    assert "no scale down below 8" in d.message


def test_fallback_respects_max() -> None:
    p = policy(metrics=TWO, max=4, on_metric_failure=OnMetricFailure(1, "replicas", 9))
    d, _ = decide(p, initial_state(), ready(2, a=None), T0)
    # the HPA default up rate (+4 or +100%) allows 6, max makes it 4
    assert (d.replicas, d.reasons) == (
        4,
        (R.SCALE_UP, R.FALLBACK, R.RATE_LIMITED_UP, R.MAX_REPLICAS),
    )


def failed(replicas: int = 3) -> Observation:
    return Observation(DeploymentState("failed", replicas), {})


def test_failed_deployment_is_reported_without_action() -> None:
    d, s = decide(policy(), initial_state(), failed(), T0)
    assert (d.action, d.replicas, d.reasons) == ("none", 3, (R.DEPLOYMENT_FAILED,))
    assert s.failed_since == T0


def test_recreate_backoff_doubles_up_to_the_cap() -> None:
    rule = OnDeploymentFailure("recreate", backoff=60.0, max_backoff=300.0)
    assert [recreate_delay(rule, n) for n in range(5)] == [60.0, 120.0, 240.0, 300.0, 300.0]
    p = policy(on_deployment_failure=rule)
    s: CoreState = initial_state()
    t = T0
    creates = []
    for _ in range(200):
        d, s = decide(p, s, failed(), t)
        if d.action == "create":
            assert d.reasons == (R.DEPLOYMENT_FAILED, R.RECREATE)
            assert d.replicas == 3
            creates.append(t - T0)
        else:
            assert d.reasons == (R.DEPLOYMENT_FAILED, R.RECREATE_BACKOFF)
        t += 15.0
    # each attempt waits its backoff from the first failed evaluation after the previous one
    assert creates[:5] == [60.0, 195.0, 450.0, 765.0, 1080.0]


def test_ready_resets_the_recreate_attempts() -> None:
    p = policy(on_deployment_failure=OnDeploymentFailure("recreate", 60.0, 600.0))
    s = initial_state()
    d, s = decide(p, s, failed(), T0)
    d, s = decide(p, s, failed(), T0 + 60)
    assert d.action == "create" and s.recreates == 1
    _, s = decide(p, s, ready(3, waiting=15.0), T0 + 120)
    assert s.recreates == 0 and s.failed_since is None


def test_recreate_needs_a_create_spec() -> None:
    p = policy(create=None, on_deployment_failure=OnDeploymentFailure("recreate", 0.0, 0.0))
    d, _ = decide(p, initial_state(), failed(), T0)
    assert d.reasons == (R.DEPLOYMENT_FAILED, R.NO_CREATE_SPEC)


# metric-failure stage table, `after` 2, fallback 6, on 4 replicas:
# (failures so far, action) -> (count, reason) or no rule yet
@pytest.mark.parametrize(
    ("before", "action", "count", "reason"),
    [
        (0, "hold", None, None),  # the first failure: not yet
        (1, "hold", 4, R.METRIC_FAILURE_HOLD),
        (1, "replicas", 6, R.FALLBACK),
    ],
)
def test_metric_failure_stage(
    before: int, action: str, count: int | None, reason: str | None
) -> None:
    rule = OnMetricFailure(after=2, action=action, replicas=6 if action == "replicas" else None)  # type: ignore[arg-type]
    ctx = context(policy(on_metric_failure=rule), ready(4), CoreState(metric_failures=before))
    failed = Recommendation(4, R.METRICS_MISSING_NO_SCALE_DOWN, "keep 4", ("waiting",))
    start = proposal(4, recommendation=failed)
    out = metric_failure_stage(ctx, start)
    if reason is None:
        assert out is start
    else:
        assert (out.replicas, out.reasons, out.ruled) == (count, (reason,), True)


# deployment-failure table: (recreates so far, failed for) -> reasons
@pytest.mark.parametrize(
    ("recreates", "failed_for", "reasons"),
    [
        (0, 0.0, (R.DEPLOYMENT_FAILED, R.RECREATE_BACKOFF)),
        (0, 3600.0, (R.DEPLOYMENT_FAILED, R.RECREATE)),
        (30, 3600.0, (R.DEPLOYMENT_FAILED, R.RECREATE_BACKOFF)),  # backoff capped, not reached
    ],
)
def test_deployment_failure(recreates: int, failed_for: float, reasons: tuple[str, ...]) -> None:
    rule = OnDeploymentFailure(action="recreate", backoff=60.0, max_backoff=7200.0)
    state = CoreState(failed_since=T0 - failed_for, recreates=recreates)
    obs = Observation(DeploymentState("failed", 2), {})
    d, s = deployment_failure(context(policy(on_deployment_failure=rule), obs, state))
    assert d.reasons == reasons
    assert s.recreates == recreates + (1 if R.RECREATE in reasons else 0)
