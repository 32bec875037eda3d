"""Recommend stage: the Kubernetes HPA formulas, tolerance band, max across metrics,
missing metrics, and the external-metric rule from zero replicas."""

from __future__ import annotations

import math

import pytest

from autoscaler.core import reasons as R
from autoscaler.core.recommend import (
    MAX_RECOMMENDATION,
    failed_metrics,
    recommend,
    recommend_stage,
    recommendation_stage,
)
from autoscaler.policy.model import Tolerance

from .builders import context, metric, policy, proposal, ready

TOL = Tolerance()  # HPA default: 0.1 both ways


@pytest.mark.parametrize(
    ("kind", "target", "value", "current", "expected"),
    [
        # value target: ceil(current * value / target)
        ("value", 10.0, 20.0, 3, 6),
        ("value", 10.0, 15.0, 2, 3),
        ("value", 10.0, 5.0, 4, 2),
        ("value", 10.0, 0.0, 4, 0),
        # utilization: value and target both ratios, same formula
        ("utilization", 0.8, 0.96, 5, 6),  # ratio 1.2 -> ceil(6.0)
        ("utilization", 0.8, 0.4, 5, 3),  # ratio 0.5 -> ceil(2.5)
        ("utilization", 0.5, 1.0, 1, 2),
        # average_value: ceil(total / per-replica target), independent of current
        ("average_value", 5.0, 37.0, 3, 8),
        ("average_value", 5.0, 37.0, 10, 8),
        ("average_value", 20.0, 100.0, 1, 5),
        ("average_value", 5.0, 0.0, 3, 0),
        # float noise must not add a replica: 0.7 / 0.1 is 6.999...
        ("average_value", 0.1, 0.7, 1, 7),
    ],
)
def test_hpa_formulas(kind: str, target: float, value: float, current: int, expected: int) -> None:
    rec = recommend((metric("m", kind, target),), {"m": value}, current, TOL)
    assert rec.replicas == expected
    assert rec.reason in (R.SCALE_UP, R.SCALE_DOWN, R.NO_CHANGE)


@pytest.mark.parametrize(
    ("value", "within"),
    [
        (10.0, True),  # ratio 1.0
        (10.9, True),  # 1.09 <= 1.1
        (11.0, True),  # exactly on the edge stays (HPA: |1 - ratio| <= tolerance)
        (11.2, False),
        (9.1, True),
        (9.0, True),
        (8.9, False),
    ],
)
def test_default_tolerance_band(value: float, within: bool) -> None:
    rec = recommend((metric("m", "value", 10.0),), {"m": value}, 4, TOL)
    if within:
        assert rec.replicas == 4
        assert rec.reason == R.WITHIN_TOLERANCE
    else:
        assert rec.replicas == math.ceil(4 * value / 10.0)
        assert rec.reason != R.WITHIN_TOLERANCE


def test_separate_up_and_down_tolerance() -> None:
    tol = Tolerance(up=0.05, down=0.3)
    m = (metric("m", "average_value", 10.0),)
    # 4 replicas x 10 = 40 is the balance point
    assert recommend(m, {"m": 43.0}, 4, tol).replicas == 5  # ratio 1.075 > 1.05: up
    assert recommend(m, {"m": 30.0}, 4, tol).replicas == 4  # ratio 0.75, within 0.3 down
    assert recommend(m, {"m": 27.0}, 4, tol).replicas == 3  # ratio 0.675: down
    assert recommend(m, {"m": 41.0}, 4, tol).reason == R.WITHIN_TOLERANCE


def test_zero_tolerance_acts_on_any_deviation() -> None:
    m = (metric("m", "value", 10.0),)
    assert recommend(m, {"m": 10.1}, 10, Tolerance(0.0, 0.0)).replicas == 11


def test_largest_recommendation_across_metrics_wins() -> None:
    ms = (
        metric("waiting", "average_value", 5.0),
        metric("kv", "utilization", 0.8),
        metric("backlog", "average_value", 20.0),
    )
    rec = recommend(ms, {"waiting": 12.0, "kv": 0.9, "backlog": 150.0}, 3, TOL)
    assert rec.replicas == 8  # backlog: ceil(150 / 20); waiting says 3, kv says 4
    assert "backlog=150" in rec.message


def test_one_metric_within_band_other_lower_keeps_current() -> None:
    ms = (metric("a", "value", 10.0), metric("b", "value", 10.0))
    rec = recommend(ms, {"a": 10.5, "b": 2.0}, 5, TOL)
    assert rec.replicas == 5
    assert rec.reason == R.WITHIN_TOLERANCE


def test_failed_metric_scale_up_on_the_rest() -> None:
    ms = (metric("a", "average_value", 5.0), metric("b", "average_value", 5.0))
    rec = recommend(ms, {"a": 40.0, "b": None}, 3, TOL)
    assert rec.replicas == 8
    assert rec.reason == R.SCALE_UP
    assert "b failed" in rec.message


def test_failed_metric_never_scales_down() -> None:
    ms = (metric("a", "average_value", 5.0), metric("b", "average_value", 5.0))
    rec = recommend(ms, {"a": 1.0}, 6, TOL)  # b missing entirely counts as failed
    assert rec.replicas == 6
    assert rec.reason == R.METRICS_MISSING_NO_SCALE_DOWN


def test_all_metrics_failed_keeps_current() -> None:
    rec = recommend((metric("a"),), {"a": None}, 4, TOL)
    assert (rec.replicas, rec.reason) == (4, R.METRICS_MISSING_NO_SCALE_DOWN)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_nan_and_infinite_readings_count_as_failed(bad: float) -> None:
    assert failed_metrics((metric("a"),), {"a": bad}) == ("a",)


@pytest.mark.parametrize(
    ("kind", "target", "value", "expected"),
    [
        ("average_value", 5.0, 12.0, 3),  # ceil(total / target)
        ("value", 10.0, 25.0, 3),  # ceil(usage ratio), like HPA external metrics
        ("utilization", 0.8, 0.4, 1),
        ("average_value", 5.0, 0.0, 0),
    ],
)
def test_from_zero_replicas(kind: str, target: float, value: float, expected: int) -> None:
    assert recommend((metric("m", kind, target),), {"m": value}, 0, TOL).replicas == expected


def test_wild_values_are_capped() -> None:
    rec = recommend((metric("m", "value", 1.0),), {"m": 1e300}, 5, TOL)
    assert rec.replicas == MAX_RECOMMENDATION


def test_message_carries_the_numbers() -> None:
    rec = recommend((metric("waiting", "average_value", 5.0),), {"waiting": 37.0}, 3, TOL)
    assert rec.message == "waiting=37 > 5/replica x 3 -> 8"


# stage table: readings of `waiting` (target 5/replica) on 4 replicas -> (count, reason)
@pytest.mark.parametrize(
    ("waiting", "count", "reason"),
    [(40.0, 8, R.SCALE_UP), (20.0, 4, R.WITHIN_TOLERANCE), (5.0, 1, R.SCALE_DOWN)],
)
def test_recommend_stage(waiting: float, count: int, reason: str) -> None:
    ctx = context(policy(), ready(4, waiting=waiting))
    out = recommend_stage(ctx, proposal(4))
    assert out.recommendation is not None
    assert (out.replicas, out.recommendation.reason) == (count, reason)
    assert out.reasons == ()  # reported only if it stands (recommendation_stage)


# the recommendation stands unless a stage settled or the failure rule ruled
@pytest.mark.parametrize(
    ("settled", "ruled", "reasons"),
    [(False, False, (R.WITHIN_TOLERANCE,)), (True, False, ()), (False, True, ())],
)
def test_recommendation_stage(settled: bool, ruled: bool, reasons: tuple[str, ...]) -> None:
    ctx = context(policy(), ready(4, waiting=20.0))
    p = recommend_stage(ctx, proposal(4))._replace(settled=settled, ruled=ruled)
    out = recommendation_stage(ctx, p)
    assert out.reasons == reasons
    assert len(out.parts) == len(reasons)
