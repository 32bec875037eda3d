"""Override stage: the admin's count holds (capped by the upper bound, at least 1), settles the
decision, and the recommendation is still recorded in the windows."""

from __future__ import annotations

import pytest

from autoscaler.core import CoreState
from autoscaler.core import reasons as R
from autoscaler.core.override import override_stage
from autoscaler.policy.model import Cost

from .builders import T0, context, policy, proposal, ready, rules


# (held, cost cap) -> (count, reasons); replicas.max is 10
@pytest.mark.parametrize(
    ("held", "cost", "count", "reasons"),
    [
        (3, None, 3, (R.OVERRIDE,)),
        (12, None, 10, (R.OVERRIDE, R.MAX_REPLICAS)),
        (8, Cost(max_hourly_usd=10.0, replica_hourly_usd=2.0), 5, (R.OVERRIDE, R.COST_CAP)),
    ],
)
def test_override_stage(held: int, cost: Cost | None, count: int, reasons: tuple[str, ...]) -> None:
    p = policy(cost=cost, scale_up=rules(window=60.0), scale_down=rules(window=60.0))
    ctx = context(p, ready(4), CoreState(override=(held, T0 + 600.0)))
    out = override_stage(ctx, proposal(4, 7))
    assert (out.replicas, out.reasons, out.settled) == (count, reasons, True)
    assert out.parts[0].startswith(f"override {held} until ")
    assert out.up_history == out.down_history == ((T0, 7),)  # the windows stay true


def test_no_override_passes_the_proposal_on() -> None:
    start = proposal(4, 7)
    assert override_stage(context(policy(), ready(4)), start) is start
