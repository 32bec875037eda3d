"""Peer table: KEDA cases (fallback, activation), run through `decide`.

Transcribed from kedacore/keda (Apache-2.0): pkg/fallback/fallback_test.go and
pkg/scaling/executor/scale_scaledobjects_test.go; each row names its test. KEDA's fallback
acts once the failures counted exceed `failureThreshold` (`NumberOfFailures > threshold`):
our `on_metric_failure.after` counts the failed evaluations it takes, so a threshold N is
`after: N + 1`. Behavior `currentReplicasIfHigher` is our `replicas` action, `currentReplicas`
our `hold`.

Left out, and why:
- fallback behavior `static` below the current count ("should ignore current replicas when
  behavior is 'static'", 15 -> 10): by design failed metrics never scale down (README,
  failure.py), so we hold 15;
- invalid fallback parameters, status patch errors, concurrency: validation and I/O;
- idleReplicaCount (TestScaleToIdleReplicas*, TestScaleFromIdleToMinReplicas*): no such field;
- TestScaleToMinReplicasWhenNotActive (LastActiveTime nil: 10 -> 0 at once): a deployment is
  deleted only after being seen idle for the whole `scale_to_zero.after` (zero.py);
- pause annotations (paused replicas, pause scale-in/out, forced activation): admin state
  outside the core's inputs.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from autoscaler.core import decide, initial_state
from autoscaler.core import reasons as R
from autoscaler.policy.model import Activation, OnMetricFailure, ScaleToZero

from .builders import T0, absent, metric, policy, ready, rules

TARGET = metric("m", "average_value", 10.0)  # createMetricSpec(10)


def _fallback(current: int, failures_before: int, action: str, value: float | None = None):
    rule = OnMetricFailure(
        after=3 + 1, action=action, replicas=10 if action == "replicas" else None
    )  # type: ignore[arg-type]
    p = policy(metrics=(TARGET,), max=100, scale_up=rules(), on_metric_failure=rule)
    state = replace(initial_state(), metric_failures=failures_before)
    return decide(p, state, ready(current, m=value), T0)


def test_healthy_read_resets_the_failure_count() -> None:
    # "should reset the health status when scaler metrics are available" (5 failures before)
    d, s = _fallback(3, 5, "replicas", value=30.0)
    assert (d.replicas, s.metric_failures) == (3, 0)


def test_failed_read_counts_a_failure_before_the_threshold() -> None:
    # "should bump the number of failures when metrics call fails": 0 -> 1, no fallback yet
    d, s = _fallback(3, 0, "replicas")
    assert (d.replicas, s.metric_failures) == (3, 1)
    assert R.FALLBACK not in d.reasons


def test_fallback_beyond_threshold() -> None:
    # "should return a normalised metric when number of failures are beyond threshold":
    # 3 failures before, threshold 3, this one is the 4th -> 10 replicas
    d, s = _fallback(2, 3, "replicas")
    assert (d.replicas, s.metric_failures) == (10, 4)
    assert R.FALLBACK in d.reasons


@pytest.mark.parametrize(
    ("test", "action", "current", "expected"),
    [
        ("should use fallback replicas when current replicas is lower", "replicas", 4, 10),
        ("should use current replicas when behavior is 'currentReplicas'", "hold", 6, 6),
    ],
)
def test_fallback_behaviors(test: str, action: str, current: int, expected: int) -> None:
    d, _ = _fallback(current, 3, action)
    assert d.replicas == expected, test


ZERO = ScaleToZero(after=300.0, activation=(Activation("m", 0.0),))


def test_scale_from_min_replicas_when_active() -> None:
    # TestScaleFromMinReplicasWhenActive: min 0, at 0, a trigger active -> 1
    p = policy(metrics=(TARGET,), min=0, scale_to_zero=ZERO)
    d, _ = decide(p, initial_state(), absent(m=1.0), T0)
    assert (d.action, d.replicas) == ("create", 1)


def test_scale_to_min_replicas_from_lower_count() -> None:
    # TestScaleToMinReplicasFromLowerInitialReplicaCount: min 5, at 1, not active -> 5
    p = policy(metrics=(TARGET,), min=5, max=10)
    d, _ = decide(p, initial_state(), ready(1, m=0.0), T0)
    assert (d.action, d.replicas) == ("scale", 5)
