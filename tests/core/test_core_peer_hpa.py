"""Peer table: Kubernetes HPA (autoscaling/v2) cases, run through `decide`.

Transcribed from kubernetes/kubernetes (Apache-2.0), pkg/controller/podautoscaler/
horizontal_test.go; each row names its test. CPU utilization is HPA's integer percent of the
summed requests (`100 * usage / requests`), given here as a ratio; pods metrics are the
per-pod average (`value` target on the replica count); object/external `Value` targets are
`value`, `AverageValue` targets `average_value`. HPA's defaulted behavior (up: max(+4, +100%)
per 15 s; down: 300 s window, -100% per 15 s) is ours.

Left out, and why:
- per-pod bookkeeping the core never sees: unready pods, CPU initialization (hot CPU), failed
  or deleted pods, missing or superfluous pod metrics (TestScaleUpUnready*, *HotCpu*,
  *IgnoresFailedPods, *IgnoresDeletionPods, TestScaleDownIncludeUnreadyPods,
  TestSuperfluousMetrics, TestMissingMetrics, TestMissingReports, TestScaleUpCMUnready*);
- scaling to or from 0 replicas by HPA (TestScaleDownToZero*, TestZeroMinReplicasDesiredZero,
  TestZeroReplicas, TestScaleUpFromZero*, min 0 rows of TestScalingWithRules and
  TestConvertDesiredReplicasWithRules): a running deployment keeps >= 1 and zero is reached
  by deleting after `scale_to_zero.after` (the KEDA rule; test_core_peer_keda.py);
- invalid specs, selectors, scale-subresource and status-update errors (CheddarCheese,
  TestCondition*Selector*, TestConditionFailedGetScale/UpdateScale, TestAvoidUnnecessary*,
  TestConditionInvalidSourceType): our validator rejects such policies, the rest is I/O;
- TestConvertDesiredReplicasWithRules "scaleUpLimit is the limit...": the pre-behavior
  limit max(2 x current, 4), replaced by the defaulted behavior in autoscaling/v2;
- TestScaleDownStabilizeInitialSize: HPA seeds a new HPA's history with the current count,
  so its first evaluation never scales down; our fresh state has no history (see
  test_fresh_state_does_not_seed_the_down_window);
- stored-history shapes (TestStoreScaleEvents' new events and outdated flags,
  TestNormalizeDesiredReplicas* log lengths): HPA internals; the counts they yield are kept.
"""

from __future__ import annotations

import pytest

from autoscaler.core import CoreState, Decision, decide, initial_state
from autoscaler.policy.model import Metric

from .builders import T0, metric, policy, ready, rules
from .peer import history

CPU = "utilization"


def _run(
    metrics: tuple[Metric, ...], current: int, lo: int, hi: int, **values: float | None
) -> Decision:
    p = policy(metrics=metrics, min=lo, max=hi)
    d, _ = decide(p, initial_state(), ready(current, **values), T0)
    return d


# (test, kind, target, value, current, min, max) -> replicas
ONE_METRIC = [
    ("TestScaleUp", CPU, 0.30, 0.50, 3, 2, 6, 5),
    ("TestScaleUpContainer", CPU, 0.30, 0.50, 3, 2, 6, 5),
    ("TestScaleUpDeployment", CPU, 0.30, 0.50, 3, 2, 6, 5),
    ("TestScaleUpReplicaSet", CPU, 0.30, 0.50, 3, 2, 6, 5),
    ("TestConditionNoAmbiguousSelectorWhenNoSelectorOverlap", CPU, 0.30, 0.50, 3, 2, 6, 5),
    ("TestScaleUpCM", "value", 15.0, 20.0, 3, 2, 6, 4),
    ("TestScaleUpCMObject", "value", 15.0, 20.0, 3, 2, 6, 4),
    ("TestScaleUpPerPodCMObject", "average_value", 10.0, 40.0, 3, 2, 6, 4),
    ("TestScaleUpCMExternal", "value", 6.666, 8.6, 3, 2, 6, 4),
    ("TestScaleUpPerPodCMExternal", "average_value", 2.222, 8.6, 3, 2, 6, 4),
    ("TestScaleDown", CPU, 0.50, 0.28, 5, 2, 6, 3),
    ("TestScaleDownContainerResource", CPU, 0.50, 0.28, 5, 2, 6, 3),
    ("TestScaleDownWithScalingRules", CPU, 0.50, 0.28, 5, 2, 6, 3),
    ("TestScaleDownCM", "value", 20.0, 12.0, 5, 2, 6, 3),
    ("TestScaleDownCMObject", "value", 20.0, 12.0, 5, 2, 6, 3),
    ("TestScaleDownPerPodCMObject", "average_value", 20.0, 60.0, 5, 2, 6, 3),
    ("TestScaleDownCMExternal", "value", 14.4, 8.6, 5, 2, 6, 3),
    ("TestScaleDownPerPodCMExternal", "average_value", 3.0, 8.6, 5, 2, 6, 3),
    ("TestTolerance", CPU, 1.00, 1.02, 3, 1, 5, 3),
    ("TestToleranceCM", "value", 20.0, 20.333, 3, 1, 5, 3),
    ("TestToleranceCMObject", "value", 20.0, 20.05, 3, 1, 5, 3),
    ("TestToleranceCMExternal", "value", 8.666, 8.6, 4, 2, 6, 4),
    ("TestTolerancePerPodCMObject", "average_value", 2.2, 8.6, 4, 2, 6, 4),
    ("TestTolerancePerPodCMExternal", "average_value", 2.2, 8.6, 4, 2, 6, 4),
    ("TestMinReplicas", CPU, 0.90, 0.03, 3, 2, 5, 2),
    ("TestMinReplicasDesiredZero", CPU, 0.90, 0.0, 3, 2, 5, 2),
    ("TestMaxReplicas", CPU, 0.90, 6.16, 3, 2, 5, 5),
    ("TestEventCreated", CPU, 0.50, 1.00, 1, 1, 5, 2),
    ("TestEventNotCreated", CPU, 0.50, 0.50, 2, 1, 5, 2),
    ("TestNoBackoffUpscaleCM", "value", 15.0, 20.0, 3, 1, 5, 4),
    ("TestComputedToleranceAlgImplementation/tc1", CPU, 0.56, 0.50, 10, 1, 1000, 9),
    ("TestComputedToleranceAlgImplementation/tc2", CPU, 0.55, 0.50, 10, 1, 1000, 10),
    # no metric read (HPA does not read them below min / above max, or they failed)
    ("TestEmptyMetrics", CPU, 1.00, None, 4, 2, 6, 4),
    ("TestEmptyCPURequest", CPU, 1.00, None, 1, 1, 5, 1),
    ("TestConditionFailedGetMetrics/Resource", CPU, 0.10, None, 3, 1, 100, 3),
    ("TestConditionFailedGetMetrics/Pods", "value", 15.0, None, 3, 1, 100, 3),
    ("TestConditionFailedGetMetrics/Object", "value", 15.0, None, 3, 1, 100, 3),
    ("TestConditionFailedGetMetrics/External", "value", 0.3, None, 3, 1, 100, 3),
    ("TestTooFewReplicas", CPU, 0.90, None, 2, 3, 5, 3),
    ("TestTooManyReplicas", CPU, 0.90, None, 10, 3, 5, 5),
    ("TestScaleUpRCImmediately", CPU, 0.80, None, 1, 2, 6, 2),
    ("TestScaleDownRCImmediately", CPU, 0.50, None, 6, 2, 5, 5),
]


@pytest.mark.parametrize(
    ("test", "kind", "target", "value", "current", "lo", "hi", "expected"), ONE_METRIC
)
def test_controller_one_metric(
    test: str,
    kind: str,
    target: float,
    value: float | None,
    current: int,
    lo: int,
    hi: int,
    expected: int,
) -> None:
    d = _run((metric("m", kind, target),), current, lo, hi, m=value)
    assert d.replicas == expected, (test, d)


def test_more_replicas_than_spec_no_scale() -> None:
    # TestMoreReplicasThanSpecNoScale: spec 4, 5 pods (a 25 % surge) at the target: keep 4
    p = policy(metrics=(metric("m", CPU, 0.5),), min=1, max=8)
    d, _ = decide(p, initial_state(), ready(4, 5, m=0.5), T0)
    assert (d.action, d.replicas) == ("none", 4)


# (test, CPU target, CPU, qps target, qps, current, min, max) -> replicas
@pytest.mark.parametrize(
    ("test", "cpu_target", "cpu", "qps_target", "qps", "current", "lo", "hi", "expected"),
    [
        ("TestScaleUpOneMetricEmpty", 0.30, 0.40, 0.1, None, 3, 2, 6, 4),  # up on the rest
        ("TestNoScaleDownOneMetricEmpty", 0.50, 0.28, 1.0, None, 5, 2, 6, 5),  # never down
        ("TestNoBackoffUpscaleCMNoBackoffCpu", 0.10, 20.0, 15.0, 20.0, 3, 1, 5, 5),
    ],
)
def test_controller_two_metrics(
    test: str,
    cpu_target: float,
    cpu: float,
    qps_target: float,
    qps: float | None,
    current: int,
    lo: int,
    hi: int,
    expected: int,
) -> None:
    ms = (metric("cpu", CPU, cpu_target), metric("qps", "value", qps_target))
    d = _run(ms, current, lo, hi, cpu=cpu, qps=qps)
    assert d.replicas == expected, (test, d)


def test_upscale_cap() -> None:
    # TestUpscaleCap / ...GreaterThanMaxReplicas: +700 % per 60 s from 3 allows 24
    up = rules(policies=(("percent", 700, 60.0),))
    for hi, expected in ((100, 24), (20, 20)):
        p = policy(metrics=(metric("m", CPU, 0.10),), min=1, max=hi, scale_up=up)
        d, _ = decide(p, initial_state(), ready(3, m=2.0), T0)
        assert d.replicas == expected


def test_stabilize_downscale() -> None:
    # TestStabilizeDownscale: recommendations 10 (10 min ago, expired) and 4 (1 min ago)
    p = policy(metrics=(metric("m", CPU, 1.0),), min=1, max=5)
    up, down = history([(10, 600.0), (4, 60.0)], 0.0, 300.0)
    state = CoreState(up_history=up, down_history=down)
    d, _ = decide(p, state, ready(4, 3, m=0.5), T0)
    assert (d.action, d.replicas) == ("none", 4)


def test_fresh_state_does_not_seed_the_down_window() -> None:
    """Known difference, kept: HPA (TestScaleDownStabilizeInitialSize) expects 5 here, because
    a controller that first sees an HPA records the current count as a recommendation. Our
    state starts empty and scales down at once (a policy resumed from pause does wait)."""
    d = _run((metric("m", CPU, 0.50),), 5, 2, 6, m=0.28)
    assert d.replicas == 3
