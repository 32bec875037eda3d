"""Peer table: Kubernetes HPA `behavior` cases (rate policies, scale events, stabilization
windows), run through `decide` (and the limit helpers for the two unit tests of them).

Transcribed from kubernetes/kubernetes (Apache-2.0), pkg/controller/podautoscaler/
horizontal_test.go: TestScalingWithRules, TestConvertDesiredReplicasWithRules,
TestCalculateScaleUpLimitWithScalingRules, TestCalculateScaleDownLimitWithBehaviors,
TestStoreScaleEvents, TestNormalizeDesiredReplicas, TestNormalizeDesiredReplicasWithBehavior.
A case's `prenormalizedDesiredReplicas` is a metric that recommends exactly that count; the
rate tables leave the stabilization window out (HPA calls the rate step alone there).
Events from `generateEventsUniformDistribution(changes, 120)` sit in the middle of their
segments of the last 120 s. Left out (see test_core_peer_hpa.py): rows with min 0 that expect
0 replicas, and the pre-behavior scale-up limit of TestConvertDesiredReplicasWithRules.
"""

from __future__ import annotations

import pytest

from autoscaler.core import CoreState
from autoscaler.core.limit import change_in_period, scale_down_limit, scale_up_limit
from autoscaler.policy.model import ScalingRules, default_scale_up

from .builders import T0, rules
from .peer import CONDITION, events, gen_rules, history, limit_codes, run_desired

UP = default_scale_up()
DOWN = rules(policies=(("percent", 100, 15.0),))  # HPA's default scale-down rate, no window

# (name, up rules, down rules, up events, down events, min, max, current, desired)
#   -> (replicas, HPA condition)
SCALING_WITH_RULES = [
    ("within range", UP, DOWN, [], [], 3, 8, 5, 7, 7, "DesiredWithinRange"),
    ("desired < minReplicas", UP, DOWN, [], [], 2, 8, 3, 1, 2, "TooFewReplicas"),
    ("maxReplicas < scaleUpLimit", UP, DOWN, [], [], 1, 10, 20, 1000, 10, "TooManyReplicas"),
    ("desired > maximum", UP, DOWN, [], [], 100, 150, 100, 1000, 150, "TooManyReplicas"),
    ("scaleUpLimit user policy", gen_rules(0, 0, 1, 60), DOWN, [], [], 1, 2000, 3, 1000, 4,
     "ScaleUpLimit"),
    # upstream marks this row testThis (skipped there); the numbers follow the same rule
    ("scaleDownLimit user policy", UP, gen_rules(20, 60), [], [], 3, 2000, 1000, 3, 980,
     "ScaleDownLimit"),
    ("scaleUp default behavior", UP, DOWN, [], [], 1, 1000, 10, 50, 20, "ScaleUpLimit"),
    ("pods policy > percent", gen_rules(100, 60, 100, 60), DOWN, [], [], 1, 1000, 10, 500, 110,
     "ScaleUpLimit"),
    ("percent policy > pods", gen_rules(2, 60, 100, 60), DOWN, [], [], 1, 1000, 10, 500, 20,
     "ScaleUpLimit"),
    ("large pod policy", gen_rules(100, 60), DOWN, [], [], 1, 1000, 10, 50, 50,
     "DesiredWithinRange"),
    ("large percent policy", gen_rules(10000, 60), DOWN, [], [], 1, 1000, 10, 50, 50,
     "DesiredWithinRange"),
    ("pod policy limitation", gen_rules(30, 60), DOWN, [], [], 1, 1000, 10, 50, 40,
     "ScaleUpLimit"),
    ("percent policy limitation", gen_rules(0, 0, 200, 60), DOWN, [], [], 1, 1000, 10, 50, 30,
     "ScaleUpLimit"),
    ("down percent > pods", UP, gen_rules(20, 60, 1, 60), [], [], 1, 1000, 100, 2, 80,
     "ScaleDownLimit"),
    ("down pods > percent", UP, gen_rules(2, 60, 1, 60), [], [], 1, 1000, 100, 2, 98,
     "ScaleDownLimit"),
    ("down MinReplicas=nil large pods", UP, gen_rules(100, 60), [], [], 1, 1000, 10, 0, 1,
     "TooFewReplicas"),
    ("down MinReplicas large pods", UP, gen_rules(100, 60), [], [], 1, 1000, 10, 0, 1,
     "TooFewReplicas"),
    ("down MinReplicas large percent", UP, gen_rules(0, 0, 100, 60), [], [], 5, 1000, 10, 2, 5,
     "TooFewReplicas"),
    ("down pod policy limitation", UP, gen_rules(5, 60), [], [], 1, 1000, 10, 2, 5,
     "ScaleDownLimit"),
    ("down percent policy limitation", UP, gen_rules(0, 0, 50, 60), [], [], 1, 1000, 10, 5, 5,
     "DesiredWithinRange"),
    ("max with large pod policy and events", gen_rules(300, 60), DOWN, [1, 5, 9], [], 1, 200,
     100, 500, 200, "TooManyReplicas"),
    ("max with large percent policy and events", gen_rules(0, 0, 10000, 60), DOWN, [1, 5, 9],
     [], 1, 200, 100, 500, 200, "TooManyReplicas"),
    ("up held at current by recent events", gen_rules(5, 120), DOWN, [1, 5, 9], [], 1, 1000,
     100, 500, 100, "ScaleUpLimit"),
    ("up pod policy and events", gen_rules(150, 120), DOWN, [1, 5, 9], [], 1, 1000, 100, 500,
     235, "ScaleUpLimit"),
    ("up percent policy and events", gen_rules(0, 0, 200, 120), DOWN, [1, 5, 9], [], 1, 1000,
     100, 500, 255, "ScaleUpLimit"),
    ("up percent policy, up and down events", gen_rules(0, 0, 300, 300), DOWN, [4], [2], 1,
     1000, 6, 24, 16, "ScaleUpLimit"),
    ("down default policy and events", UP, DOWN, [], [1, 5, 9], 1, 1000, 10, 5, 5,
     "DesiredWithinRange"),
    ("down MinReplicas=nil large pods and events", UP, gen_rules(115, 120), [], [1, 5, 9], 1,
     1000, 100, 0, 1, "TooFewReplicas"),
    ("down MinReplicas large pods and events", UP, gen_rules(130, 120), [], [1, 5, 9], 5, 1000,
     100, 0, 5, "TooFewReplicas"),
    ("down MinReplicas large percent and events", UP, gen_rules(0, 0, 100, 120), [], [1, 5, 9],
     5, 1000, 100, 2, 5, "TooFewReplicas"),
    ("down pod policy limitation and events", UP, gen_rules(5, 120), [], [1, 5, 9], 1, 1000,
     100, 2, 100, "ScaleDownLimit"),
    ("down percent policy limitation and events", UP, gen_rules(0, 0, 50, 120), [], [2, 4, 6],
     1, 1000, 100, 0, 56, "ScaleDownLimit"),
    ("down percent policy, up and down events", UP, gen_rules(0, 0, 50, 180), [2], [4], 1,
     1000, 10, 1, 6, "ScaleDownLimit"),
    ("down prevented by events", UP, gen_rules(0, 0, 10, 120), [], [10, 10, 10], 1, 1000, 100,
     0, 100, "ScaleDownLimit"),
    ("down still allowed by events", UP, gen_rules(0, 0, 1000, 120), [], [10, 10, 10], 1, 1000,
     10, 5, 5, "DesiredWithinRange"),
    ("outdated flag, one policy, up", gen_rules(1000, 60), DOWN, [8, 12, 9, 11], [], 1, 1000,
     100, 200, 200, "DesiredWithinRange"),
    ("not outdated, two policies, up", gen_rules(1000, 120, 100, 60), DOWN, [8, 12, 9, 11], [],
     1, 1000, 100, 200, 200, "DesiredWithinRange"),
    ("outdated, two policies, up", gen_rules(1000, 30, 100, 60), DOWN, [8, 12, 9, 11], [], 1,
     1000, 100, 200, 200, "DesiredWithinRange"),
    ("outdated flag, one policy, down", UP, gen_rules(1000, 60), [], [8, 12, 9, 11], 1, 1000,
     100, 5, 5, "DesiredWithinRange"),
    ("not outdated, two policies, down", UP, gen_rules(1000, 120, 100, 60), [], [8, 12, 9, 11],
     1, 1000, 100, 5, 5, "DesiredWithinRange"),
    ("outdated, two policies, down", UP, gen_rules(1000, 30, 100, 60), [], [8, 12, 9, 11], 1,
     1000, 100, 5, 5, "DesiredWithinRange"),
    # TestConvertDesiredReplicasWithRules rows the defaulted behavior covers
    ("convert: within range", UP, DOWN, [], [], 3, 8, 5, 7, 7, "DesiredWithinRange"),
    ("convert: desired < minReplicas", UP, DOWN, [], [], 2, 8, 3, 1, 2, "TooFewReplicas"),
    ("convert: maxReplicas limit", UP, DOWN, [], [], 1, 10, 20, 1000, 10, "TooManyReplicas"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "up", "down", "up_events", "down_events", "lo", "hi", "current", "desired",
     "expected", "condition"),
    SCALING_WITH_RULES,
)  # fmt: skip
def test_scaling_with_rules(
    name: str,
    up: ScalingRules,
    down: ScalingRules,
    up_events: list[int],
    down_events: list[int],
    lo: int,
    hi: int,
    current: int,
    desired: int,
    expected: int,
    condition: str,
) -> None:
    state = events(up_events, down_events)
    d = run_desired(current, desired, lo, hi, up, down, state)
    assert d.replicas == expected, (name, d)
    codes = limit_codes(d.reasons)
    if condition == "DesiredWithinRange":
        assert not codes, (name, d)
    else:
        assert CONDITION[condition] in codes, (name, d)


def test_calculate_limits_with_select_min() -> None:
    # TestCalculateScaleUpLimitWithScalingRules / TestCalculateScaleDownLimitWithBehaviors
    two = rules(policies=(("replicas", 2, 60.0), ("percent", 50, 60.0)), select="min")
    assert scale_up_limit(1, (), T0, two)[0] == 2
    assert scale_down_limit(5, (), T0, two)[0] == 3


# TestStoreScaleEvents: (name, (change, age) events) -> change within the last 60 s
@pytest.mark.parametrize(
    ("name", "prev", "expected"),
    [
        ("empty entries", [], 0),
        ("one outdated entry", [(7, 61.0)], 0),
        ("one actual entry", [(7, 58.0)], 7),
        ("two entries, one of them outdated", [(7, 61.0), (6, 59.0)], 6),
        ("policies with different periods", [(8, 29.0), (6, 59.0), (7, 61.0), (9, 61.0)], 14),
        ("two entries, both actual", [(7, 58.0), (6, 59.0)], 13),
    ],
)
def test_store_scale_events(name: str, prev: list[tuple[int, float]], expected: int) -> None:
    ups = tuple(sorted((T0 - age, c) for c, age in prev))
    downs = tuple((t, -c) for t, c in ups)
    assert change_in_period(ups, T0, 60.0) == expected, name
    assert change_in_period(downs, T0, 60.0) == -expected, name


# TestNormalizeDesiredReplicas (no behavior: 5 min down window) and
# TestNormalizeDesiredReplicasWithBehavior (windows as given, 0 when unset):
# (name, (count, age) recommendations, current, desired, up window, down window) -> replicas
STABILIZE = [
    ("empty log", [], 20, 5, 0.0, 300.0, 5),
    ("stabilize", [(4, 120.0), (5, 60.0)], 20, 3, 0.0, 300.0, 5),
    ("no stabilize", [(1, 120.0), (2, 60.0)], 20, 3, 0.0, 300.0, 3),
    ("no stabilize - old recommendations", [(10, 600.0), (9, 540.0)], 20, 3, 0.0, 300.0, 3),
    ("stabilize - old recommendations", [(10, 600.0), (4, 60.0), (5, 120.0), (9, 540.0)], 20,
     3, 0.0, 300.0, 5),
    ("behavior: empty recommendations for scaling down", [], 100, 5, 0.0, 0.0, 5),
    ("behavior: simple scale down stabilization", [(4, 120.0), (5, 60.0)], 100, 3, 0.0, 180.0,
     5),
    ("behavior: simple scale up stabilization", [(4, 120.0), (5, 60.0)], 1, 7, 300.0, 0.0, 4),
    ("behavior: no scale down stabilization", [(1, 120.0), (2, 60.0)], 100, 3, 300.0, 0.0, 3),
    ("behavior: no scale up stabilization", [(4, 120.0), (5, 60.0)], 1, 3, 0.0, 300.0, 3),
    ("behavior: no down stabilization, reuse", [(10, 600.0), (9, 540.0)], 100, 3, 0.0, 0.0, 3),
    ("behavior: no up stabilization, reuse", [(10, 600.0), (9, 540.0)], 1, 100, 0.0, 0.0, 100),
    ("behavior: down stabilization, reuse obsolete",
     [(10, 600.0), (4, 60.0), (5, 120.0), (9, 540.0)], 100, 3, 0.0, 180.0, 5),
    ("behavior: up stabilization, reuse obsolete",
     [(10, 6000.0), (6, 60.0), (5, 120.0), (9, 180.0)], 1, 100, 300.0, 0.0, 5),
    ("behavior: no scale up when rec goes down", [(2, 6000.0), (3, 180.0)], 2, 1, 300.0, 300.0,
     2),
    ("behavior: no scale down when rec goes up", [(2, 6000.0), (1, 180.0)], 2, 3, 300.0, 300.0,
     2),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "recs", "current", "desired", "up_window", "down_window", "expected"), STABILIZE
)
def test_normalize_desired_replicas(
    name: str,
    recs: list[tuple[int, float]],
    current: int,
    desired: int,
    up_window: float,
    down_window: float,
    expected: int,
) -> None:
    up, down = history(recs, up_window, down_window)
    state = CoreState(up_history=up, down_history=down)
    d = run_desired(
        current, desired, up=rules(window=up_window), down=rules(window=down_window), state=state
    )
    assert d.replicas == expected, (name, d)
