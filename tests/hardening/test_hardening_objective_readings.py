"""The objective mode under any reading: every signal any float (NaN, infinities, 1e300,
subnormals, negatives) or failed, every start-up time too. A decision is always made, stays
within the bounds, says why, and the next state serializes and round-trips.

A service-time variability of 1e300 once overflowed the queueing model (k = (1 + cv^2) / 2
became inf and `math.ceil(inf)` raised), which stops the policy's evaluations for as long as
the reading stays wild.
"""

from __future__ import annotations

import json
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from autoscaler.core import decide, from_dict, initial_state, to_dict
from autoscaler.core.types import DeploymentState, Observation
from autoscaler.policy.model import Objective, ObjectiveSignals
from tests.core.test_core_objective import NAMES, slo

SIGNALS = ObjectiveSignals(
    arrival_rate="arrivals",
    service_time="service",
    in_flight="running",
    queue="waiting",
    observed_wait="wait_p99",
    service_time_cv="cv",
)
HOSTILE = (1e300, -1e300, 1e308, 5e-324, -5e-324, 1e-300, -0.0, 0.0, 1e15, -1.0)
readings = st.one_of(
    st.none(),
    st.sampled_from(HOSTILE),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(0.0, 100.0),
)
steps = st.lists(
    st.fixed_dictionaries({name: readings for name in (*NAMES, "cv")}), min_size=1, max_size=8
)
startups = st.one_of(st.none(), st.sampled_from(HOSTILE), st.floats(allow_nan=True))


@settings(max_examples=300, deadline=None)
@given(
    steps=steps,
    replicas=st.integers(1, 12),
    startup=startups,
    forecast=st.booleans(),
    hpa=st.booleans(),
)
def test_any_reading_gives_a_bounded_decision_and_a_state_that_round_trips(
    steps: list[dict[str, float | None]],
    replicas: int,
    startup: float | None,
    forecast: bool,
    hpa: bool,
) -> None:
    base = slo(min=1, max=10, forecast=forecast, hpa=hpa)
    assert base.objective is not None
    objective: Objective = replace(base.objective, signals=SIGNALS)
    policy = replace(base, metrics=(*base.metrics, replace(base.metrics[0], name="cv")))
    policy = replace(policy, objective=objective)
    state = initial_state()
    for i, values in enumerate(steps):
        if hpa:
            values = {**values, "backlog": values["arrivals"]}
        observation = Observation(
            DeploymentState("ready", replicas), values, startup_seconds=startup
        )
        decision, state = decide(policy, state, observation, 1_700_000_000.0 + 15.0 * i)
        assert 1 <= decision.replicas <= 10, decision
        assert decision.reasons and isinstance(decision.message, str)
        text = json.dumps(to_dict(state), allow_nan=False)
        assert from_dict(json.loads(text)) == state
        replicas = decision.replicas
