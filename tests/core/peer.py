"""Helpers for the peer test tables (test_core_peer_*.py): cases transcribed from the
Kubernetes HPA, KEDA and Knative test suites, run through `decide`.

A peer case states a replica count, metric readings, bounds, behavior rules and the history
(recommendations, scale events) with their ages; these helpers turn that into a policy, a
state and an observation at `T0`.
"""

from __future__ import annotations

from dataclasses import replace

from autoscaler.core import CoreState, Decision, decide, initial_state
from autoscaler.core import reasons as R
from autoscaler.core.proposal import History
from autoscaler.core.stabilize import record
from autoscaler.policy.model import Metric, ScalingRules, Tolerance

from .builders import T0, metric, policy, ready, rules

# HPA's `expectedCondition` (ScalingLimited / AbleToScale reasons) as our reason codes.
CONDITION = {
    "ScaleUpLimit": R.RATE_LIMITED_UP,
    "ScaleDownLimit": R.RATE_LIMITED_DOWN,
    "TooManyReplicas": R.MAX_REPLICAS,
    "TooFewReplicas": R.MIN_REPLICAS,
}


def gen_rules(
    pods: int = 0, pods_period: float = 0.0, percent: int = 0, percent_period: float = 0.0
) -> ScalingRules:
    """HPA's `generateScalingRules(pods, podsPeriod, percent, percentPeriod, window)`, select
    max; the window is left out (0): the rate tables call the rate step alone."""
    pols: list[tuple[str, int, float]] = []
    if pods:
        pols.append(("replicas", pods, pods_period))
    if percent:
        pols.append(("percent", percent, percent_period))
    return rules(policies=tuple(pols))


def uniform_ages(changes: list[int], period: float) -> list[tuple[float, int]]:
    """HPA's `generateEventsUniformDistribution`: (age, change) with each event in the middle
    of its segment of the last `period` seconds, the first one oldest."""
    seg = period / len(changes)
    return [(period - seg * (i + 1) + seg / 2, c) for i, c in enumerate(changes)]


def events(up: list[int] = [], down: list[int] = [], period: float = 120.0) -> CoreState:  # noqa: B006
    """A state holding HPA's scale-up and scale-down events (down ones as negative changes)."""
    timed = [(T0 - age, c) for age, c in uniform_ages(up, period)] if up else []
    if down:
        timed += [(T0 - age, -c) for age, c in uniform_ages(down, period)]
    return replace(initial_state(), events=tuple(sorted(timed)))


def history(
    recs: list[tuple[int, float]], up_window: float, down_window: float
) -> tuple[History, History]:
    """The stabilization queues after HPA's timestamped recommendations `(count, age)`."""
    up: History = ()
    down: History = ()
    for age, count in sorted(((a, c) for c, a in recs), reverse=True):
        up = record(up, T0 - age, up_window, count, keep_max=False)
        down = record(down, T0 - age, down_window, count, keep_max=True)
    return up, down


# A metric whose reading N recommends exactly N replicas (HPA's `prenormalizedDesiredReplicas`):
# an average-value target of 1 per replica.
ASKS: Metric = metric("m", "average_value", 1.0)


EXACT = Tolerance(0.0, 0.0)  # the rate and window tables start from the recommendation itself


def run_desired(
    current: int,
    desired: int,
    lo: int = 1,
    hi: int = 1000,
    up: ScalingRules | None = None,
    down: ScalingRules | None = None,
    state: CoreState | None = None,
) -> Decision:
    """One decision on `current` replicas whose metrics recommend `desired`."""
    p = policy(metrics=(ASKS,), min=lo, max=hi, tolerance=EXACT, scale_up=up, scale_down=down)
    d, _ = decide(p, state or initial_state(), ready(current, m=float(desired)), T0)
    return d


def limit_codes(reasons: tuple[str, ...]) -> set[str]:
    return set(reasons) & set(CONDITION.values())
