"""The objective stage through `decide`: properties, start-up awareness, forecast, correction.

Policies carry an objective fed by target-less signal metrics (`arrivals`, `service`,
`running`, `waiting`, `wait_p99`); waits are in seconds, rates in requests/s.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autoscaler.core import CoreState, Decision, Observation, decide, from_dict, initial_state
from autoscaler.core import forecast as F
from autoscaler.core import profile as P
from autoscaler.core import reasons as R
from autoscaler.core.correction import CORRECTION_MAX, CORRECTION_MIN
from autoscaler.core.objective import objective_stage
from autoscaler.core.queueing import wait_quantile
from autoscaler.core.recommend import recommend_stage
from autoscaler.core.state import to_dict, with_override
from autoscaler.core.types import DeploymentState
from autoscaler.policy.model import Metric, Objective, ObjectiveSignals, Policy

from .builders import SOURCE, T0, context, metric, policy, proposal, rules

SIGNALS = ObjectiveSignals(
    arrival_rate="arrivals",
    service_time="service",
    in_flight="running",
    queue="waiting",
    observed_wait="wait_p99",
)
NAMES = ("arrivals", "service", "running", "waiting", "wait_p99")


def slo(
    wait: float = 5.0,
    quantile: float = 0.99,
    concurrency: int = 16,
    startup: float = 180.0,
    forecast: bool = True,
    max: int = 50,
    min: int = 1,
    hpa: bool = False,
    down_window: float = 0.0,
) -> Policy:
    metrics = tuple(Metric(n, SOURCE) for n in NAMES)
    if hpa:
        metrics = (*metrics, metric("backlog", "average_value", 10.0))
    base = policy(
        metrics=metrics,
        min=min,
        max=max,
        scale_down=rules(window=down_window, policies=(("percent", 100, 15.0),)),
    )
    return replace(
        base,
        objective=Objective(
            signals=SIGNALS,
            concurrency=concurrency,
            queue_wait=wait,
            quantile=quantile,
            startup=startup,
            forecast=forecast,
        ),
    )


def load(
    rate: float,
    service: float = 4.0,
    running: float = 0.0,
    queue: float = 0.0,
    **more: float | None,
) -> dict[str, float | None]:
    values: dict[str, float | None] = {
        "arrivals": rate,
        "service": service,
        "running": running,
        "waiting": queue,
        "wait_p99": 0.0,
    }
    values.update(more)
    return values


def run(
    p: Policy,
    steps: list[dict[str, float | None]],
    replicas: int = 2,
    start: float = T0,
    state: CoreState | None = None,
    interval: float = 15.0,
    startup_seconds: float | None = None,
) -> tuple[list[Decision], CoreState, int]:
    state = state or initial_state()
    out = []
    for i, values in enumerate(steps):
        obs = Observation(
            DeploymentState("ready", replicas), values, startup_seconds=startup_seconds
        )
        d, state = decide(p, state, obs, start + i * interval)
        out.append(d)
        replicas = d.replicas
    return out, state, replicas


# --- properties ------------------------------------------------------------------------------

loads = st.fixed_dictionaries(
    {
        "rate": st.floats(0.0, 40.0),
        "service": st.floats(0.1, 30.0),
        "running": st.floats(0.0, 400.0),
        "queue": st.floats(0.0, 500.0),
        "wait": st.floats(0.0, 60.0),
    }
)


def values_of(x: dict[str, float]) -> dict[str, float | None]:
    return load(x["rate"], x["service"], x["running"], x["queue"], wait_p99=x["wait"])


@st.composite
def histories(draw: st.DrawFn) -> tuple[CoreState, int]:
    """A state reached by a few random evaluations, and the replica count after them."""
    p = slo()
    steps = [values_of(draw(loads)) for _ in range(draw(st.integers(0, 6)))]
    _, state, replicas = run(p, steps, replicas=draw(st.integers(1, 20)))
    return state, replicas


def bigger(x: dict[str, float], y: dict[str, float]) -> dict[str, float]:
    # Every load signal at least as high; the observed wait stays (it only moves the next
    # evaluation's correction).
    return {k: (x[k] if k == "wait" else max(x[k], y[k])) for k in x}


@settings(max_examples=150, deadline=None)
@given(history=histories(), x=loads, y=loads, replicas=st.integers(1, 30))
def test_more_load_never_fewer_replicas(
    history: tuple[CoreState, int], x: dict[str, float], y: dict[str, float], replicas: int
) -> None:
    state, _ = history
    p = slo()
    now = T0 + 1000.0
    low, _ = decide(p, state, Observation(DeploymentState("ready", replicas), values_of(x)), now)
    high, _ = decide(
        p, state, Observation(DeploymentState("ready", replicas), values_of(bigger(x, y))), now
    )
    assert high.replicas >= low.replicas


@settings(max_examples=150, deadline=None)
@given(
    history=histories(),
    x=loads,
    waits=st.tuples(st.floats(0.2, 60.0), st.floats(0.2, 60.0)),
    quantiles=st.tuples(
        st.sampled_from([0.5, 0.9, 0.99, 0.999]), st.sampled_from([0.5, 0.9, 0.99, 0.999])
    ),
    replicas=st.integers(1, 30),
)
def test_a_tighter_objective_never_fewer_replicas(
    history: tuple[CoreState, int],
    x: dict[str, float],
    waits: tuple[float, float],
    quantiles: tuple[float, float],
    replicas: int,
) -> None:
    state, _ = history
    loose = slo(wait=max(waits), quantile=min(quantiles))
    tight = slo(wait=min(waits), quantile=max(quantiles))
    obs = Observation(DeploymentState("ready", replicas), values_of(x))
    a, _ = decide(loose, state, obs, T0 + 1000.0)
    b, _ = decide(tight, state, obs, T0 + 1000.0)
    assert b.replicas >= a.replicas


@settings(max_examples=100, deadline=None)
@given(
    steps=st.lists(loads, min_size=1, max_size=12),
    bounds=st.tuples(st.integers(1, 10), st.integers(1, 10)),
    replicas=st.integers(1, 12),
    forecast=st.booleans(),
)
def test_bounds_and_determinism(
    steps: list[dict[str, float]], bounds: tuple[int, int], replicas: int, forecast: bool
) -> None:
    low, high = sorted(bounds)
    p = slo(min=low, max=high, forecast=forecast)
    values = [values_of(x) for x in steps]
    first, s1, _ = run(p, values, replicas=replicas)
    again, s2, _ = run(p, values, replicas=replicas)
    assert first == again and s1 == s2
    for d in first:
        assert low <= d.replicas <= high
    for d in first[1:]:
        assert R.OBJECTIVE_SIZED in d.reasons


@settings(max_examples=100, deadline=None)
@given(history=histories(), x=loads, replicas=st.integers(1, 30), hours=st.integers(0, 400))
def test_the_profile_never_pushes_below_the_reactive_floor(
    history: tuple[CoreState, int], x: dict[str, float], replicas: int, hours: int
) -> None:
    state, _ = history
    # A profile learned at a far higher rate than now, then compared with forecast off.
    profile = P.Profile()
    for h in range(hours):
        profile = F.update(profile, T0 + h * 3600.0, 100.0 * (1 + math.sin(h)))
    if state.objective is not None:
        state = replace(state, objective=replace(state.objective, profile=profile))
    obs = Observation(DeploymentState("ready", replicas), values_of(x))
    now = T0 + hours * 3600.0
    on, _ = decide(slo(forecast=True), state, obs, now)
    off, _ = decide(slo(forecast=False), state, obs, now)
    assert on.replicas >= off.replicas


@settings(max_examples=100, deadline=None)
@given(steps=st.lists(loads, min_size=1, max_size=30))
def test_the_correction_factor_stays_within_bounds(steps: list[dict[str, float]]) -> None:
    _, state, _ = run(slo(), [values_of(x) for x in steps])
    assert state.objective is not None
    assert CORRECTION_MIN <= state.objective.correction <= CORRECTION_MAX


def test_state_with_a_full_profile_stays_within_8_kb() -> None:
    # Two weeks at one evaluation a minute with every part in use: a profile of every hour,
    # peaks, a 300 s down window of distinct recommendations, the correction.
    p = slo(down_window=300.0, startup=600.0)
    state = initial_state()
    replicas = 3
    biggest = 0
    for i in range(2 * 7 * 24 * 60):
        t = T0 + i * 60.0
        rate = 20 + 15 * math.sin(i / 90.0) + (i % 7)
        values = load(rate, 4.0, running=rate * 4, queue=(i % 5) * 3.0, wait_p99=(i % 11) * 0.7)
        d, state = decide(p, state, Observation(DeploymentState("ready", replicas), values), t)
        replicas = d.replicas
        if i % 97 == 0:
            biggest = max(biggest, len(json.dumps(to_dict(state))))
    text = json.dumps(to_dict(state))
    assert state.objective is not None and len(state.objective.profile.buckets) == P.HOURS
    assert all(b >= 0 for b in state.objective.profile.buckets)
    assert from_dict(json.loads(text)) == state
    assert max(biggest, len(text)) <= 8192


# --- sizing, backlog and start-up ------------------------------------------------------------


def test_sizes_the_smallest_count_that_meets_the_objective() -> None:
    # 10 requests/s of 4 s each is 40 Erlangs; 16 slots a replica.
    d, _ = decide(slo(), initial_state(), Observation(DeploymentState("ready", 1), load(10.0)), T0)
    n = d.replicas
    assert wait_quantile(n * 16, 10.0, 4.0, 1.0, 0.99) <= 5.0
    assert wait_quantile((n - 1) * 16, 10.0, 4.0, 1.0, 0.99) > 5.0
    assert d.reasons[:2] == (R.SCALE_UP, R.OBJECTIVE_SIZED)
    assert f"-> {n} (p99 wait" in d.message


def test_a_queue_that_drains_before_a_start_up_buys_nothing() -> None:
    # 3 ready replicas (48 slots) serve 40 Erlangs with 8 spare slots = 2 requests/s spare:
    # 60 queued drain in 30 s, long before a 180 s start-up.
    p = slo()
    quiet, _ = decide(p, initial_state(), Observation(DeploymentState("ready", 3), load(10.0)), T0)
    assert quiet.replicas == 3
    d, _ = decide(
        p, initial_state(), Observation(DeploymentState("ready", 3), load(10.0, queue=60.0)), T0
    )
    assert d.replicas == 3
    assert R.OBJECTIVE_DRAINS_FIRST in d.reasons and "drains in 30s" in d.message
    # A queue that takes longer than a start-up to drain buys capacity for it.
    d, _ = decide(
        p, initial_state(), Observation(DeploymentState("ready", 3), load(10.0, queue=2000.0)), T0
    )
    assert d.replicas > 3 and R.OBJECTIVE_BACKLOG in d.reasons
    # A short start-up (measured by the daemon) makes the same small queue worth a replica:
    # 40 slots for 10/s of 4 s, plus 60 x 4 / (4 + 5) = 26.7 spare to start 60 within 5 s:
    # 66.7 slots, 5 replicas.
    obs = Observation(DeploymentState("ready", 3), load(10.0, queue=60.0), startup_seconds=5.0)
    d, state = decide(p, initial_state(), obs, T0)
    assert d.replicas == 5 and R.OBJECTIVE_BACKLOG in d.reasons
    assert state.objective is not None and state.objective.startup == 5.0


def test_keeps_a_replica_needed_again_within_a_start_up() -> None:
    p = slo(startup=120.0)
    busy = [load(20.0)] * 4
    calm = [load(2.0)] * 12  # 180 s
    decisions, _, _ = run(p, busy + calm, replicas=8)
    peak = decisions[3].replicas
    after = [d.replicas for d in decisions[4:]]
    # Held at the peak while it is within the start-up (120 s = 8 evaluations) ...
    assert after[:7] == [peak] * 7
    assert all(R.OBJECTIVE_STARTUP_HOLD in d.reasons for d in decisions[4:11])
    # ... and given back after.
    assert after[-1] < peak
    # Without a start-up hold, the same drop is immediate.
    decisions, _, _ = run(slo(startup=0.0), busy + calm, replicas=8)
    assert decisions[4].replicas < peak


def test_failed_signals_never_scale_down_but_idle_is_no_failure() -> None:
    p = slo()
    d, state = decide(p, initial_state(), Observation(DeploymentState("ready", 6), load(None)), T0)  # type: ignore[arg-type]
    assert d.replicas == 6 and R.METRICS_MISSING_NO_SCALE_DOWN in d.reasons
    assert state.metric_failures == 1
    d, _ = decide(
        p, initial_state(), Observation(DeploymentState("ready", 6), load(1.0, service=None)), T0
    )  # type: ignore[arg-type]
    assert d.replicas == 6 and R.METRICS_MISSING_NO_SCALE_DOWN in d.reasons
    # A failed optional signal still forbids a scale-down.
    d, _ = decide(
        p, initial_state(), Observation(DeploymentState("ready", 6), load(1.0, running=None)), T0
    )  # type: ignore[arg-type]
    assert d.replicas == 6
    # No traffic: the service time and the wait quantile have nothing to measure (NaN).
    idle = load(0.0, service=math.nan, wait_p99=math.nan)
    d, state = decide(p, initial_state(), Observation(DeploymentState("ready", 6), idle), T0)
    assert d.replicas == 1 and state.metric_failures == 0


def test_combines_with_hpa_targets_by_max() -> None:
    p = slo(hpa=True)
    values = load(1.0, backlog=100.0)  # HPA: 100 / 10 per replica = 10
    d, _ = decide(p, initial_state(), Observation(DeploymentState("ready", 2), values), T0)
    assert d.desired == 10  # then the HPA rate policy (+4 per 15 s) applies as always
    assert d.replicas == 6 and R.RATE_LIMITED_UP in d.reasons
    values = load(30.0, backlog=10.0)  # the objective needs more than HPA's 1
    d, _ = decide(p, initial_state(), Observation(DeploymentState("ready", 2), values), T0)
    assert d.replicas > 2 and R.OBJECTIVE_SIZED in d.reasons


def test_later_stages_apply() -> None:
    p = replace(slo(max=5), cost=replace(slo().cost))
    d, _ = decide(p, initial_state(), Observation(DeploymentState("ready", 2), load(40.0)), T0)
    assert d.replicas == 5 and R.MAX_REPLICAS in d.reasons


def test_creates_with_the_sized_count_from_zero() -> None:
    p = replace(slo(min=0), scale_to_zero=None)
    p = replace(p, replicas=replace(p.replicas, min=1))
    d, state = decide(p, initial_state(), Observation(DeploymentState("absent", 0), load(10.0)), T0)
    assert d.action == "create" and d.replicas >= 3
    assert state.objective is not None


# --- correction and forecast -----------------------------------------------------------------


def test_a_replica_slower_than_measured_is_corrected() -> None:
    # The service-time signal says 2 s, the replicas actually take 4 s: the observed p99 wait
    # is what the true service time gives with the replicas at hand.
    p = slo(wait=5.0)
    state = initial_state()
    replicas = 2
    true_s, rate = 4.0, 12.0
    history = []
    for i in range(200):
        observed = wait_quantile(replicas * 16, rate, true_s, 1.0, 0.99)
        values = load(rate, 2.0, wait_p99=min(observed, 600.0))
        d, state = decide(
            p, state, Observation(DeploymentState("ready", replicas), values), T0 + i * 15.0
        )
        replicas = d.replicas
        history.append(replicas)
    assert state.objective is not None
    assert state.objective.correction > 1.2
    # In the end the replicas meet the objective with the true service time.
    assert wait_quantile(replicas * 16, rate, true_s, 1.0, 0.99) <= 5.0
    assert R.OBJECTIVE_CORRECTED in d.reasons and "x" in d.message


def week(rate_at: object, p: Policy, weeks: int = 1, start: float = T0) -> CoreState:
    state = initial_state()
    replicas = 2
    for i in range(weeks * 7 * 24 * 4):  # every 15 minutes
        t = start + i * 900.0
        r = rate_at(t)  # type: ignore[operator]
        d, state = decide(p, state, Observation(DeploymentState("ready", replicas), load(r)), t)
        replicas = d.replicas
    return state


def daily(t: float) -> float:
    hour = (t // 3600) % 24
    return 30.0 if 9 <= hour < 17 else 2.0


def test_forecast_pre_warms_one_start_up_ahead() -> None:
    p = slo(startup=600.0)
    start = math.floor(T0 / 86400) * 86400  # midnight UTC
    state = week(daily, p, weeks=2, start=start)
    # Monday-ish 08:52 (two weeks later): the 09:00 hour is 8 minutes away, within a start-up.
    t = start + 14 * 86400 + 8 * 3600 + 52 * 60
    obs = Observation(DeploymentState("ready", 2), load(2.0))
    d, _ = decide(p, state, obs, t)
    reactive, _ = decide(slo(startup=600.0, forecast=False), state, obs, t)
    assert R.OBJECTIVE_FORECAST in d.reasons
    assert d.replicas > reactive.replicas
    # An hour earlier, no forecast beyond the reactive count.
    d, _ = decide(p, state, obs, t - 3600)
    assert R.OBJECTIVE_FORECAST not in d.reasons


def test_a_holiday_damps_the_forecast() -> None:
    p = slo(startup=600.0)
    start = math.floor(T0 / 86400) * 86400
    state = week(daily, p, weeks=2, start=start)
    # A holiday: the morning runs at a tenth of the profile.
    t = start + 14 * 86400 + 9 * 3600
    replicas = 3
    d = None
    for i in range(int(4 * 3600 / 15)):
        obs = Observation(DeploymentState("ready", replicas), load(3.0))
        d, state = decide(p, state, obs, t + i * 15.0)
        replicas = d.replicas
    assert d is not None and state.objective is not None
    assert state.objective.profile.ratio < 0.2
    # Before 13:00 (a busy hour in the profile): the damped forecast adds at most one replica.
    reactive, _ = decide(
        slo(startup=600.0, forecast=False),
        state,
        Observation(DeploymentState("ready", replicas), load(3.0)),
        t + 4 * 3600 - 300,
    )
    assert d.replicas <= reactive.replicas + 1


def test_profile_round_trip_and_rejects() -> None:
    profile = P.Profile()
    for h in range(200):
        profile = F.update(profile, T0 + h * 1800.0, h * 0.37)
    assert P.from_dict(json.loads(json.dumps(P.to_dict(profile)))) == profile
    for bad in ({"buckets": "zz"}, {"ratio": "x"}, {"hour": 1.5}, []):
        try:
            P.from_dict(bad)
        except ValueError:
            continue
        raise AssertionError(bad)


def test_composes_with_cost_cap_schedule_and_panic() -> None:
    from autoscaler.policy.model import Cost, Panic, Schedule

    # A cost cap of 4 replicas wins over the objective's count.
    p = replace(slo(), cost=Cost(replica_hourly_usd=2.0, max_hourly_usd=8.0))
    d, _ = decide(p, initial_state(), Observation(DeploymentState("ready", 2), load(40.0)), T0)
    assert d.replicas == 4 and R.COST_CAP in d.reasons and d.desired is not None
    assert d.desired > 4
    # A schedule window's floor holds while the objective would go lower.
    p = replace(slo(), schedules=(Schedule("* * * * *", 3600.0, "UTC", min=6),))
    d, _ = decide(p, initial_state(), Observation(DeploymentState("ready", 6), load(1.0)), T0)
    assert d.replicas == 6 and R.SCHEDULE_MIN in d.reasons
    # Panic: the objective's count against the ready replicas, then no scale-down in the hold.
    base = slo(startup=0.0)
    p = replace(base, behavior=replace(base.behavior, panic=Panic(threshold=2.0, hold=120.0)))
    d, state = decide(p, initial_state(), Observation(DeploymentState("ready", 2), load(40.0)), T0)
    assert R.PANIC in d.reasons and d.replicas > 4
    d, _ = decide(p, state, Observation(DeploymentState("ready", d.replicas), load(1.0)), T0 + 15)
    assert R.PANIC_HOLD in d.reasons


def test_memory_round_trips_and_rejects_bad_state() -> None:
    _, state, _ = run(slo(), [load(10.0, queue=5.0, wait_p99=3.0)] * 5, startup_seconds=42.0)
    data = json.loads(json.dumps(to_dict(state)))
    assert from_dict(data) == state
    assert data["objective"]["startup"] == 42.0
    for key, value in (("correction", 9.0), ("peaks", [[1.0, -1]]), ("startup", "x")):
        bad = json.loads(json.dumps(data))
        bad["objective"][key] = value
        try:
            from_dict(bad)
        except ValueError as exc:
            assert "state.objective" in str(exc)
            continue
        raise AssertionError(key)
    # A state saved before objectives existed loads, and sizes from scratch.
    del data["objective"]
    assert from_dict(data).objective is None


def test_replicas_bought_for_a_queue_are_not_held() -> None:
    # A queue that outlasts a 2 min start-up buys capacity to clear it; once the queue is
    # gone the count falls back to what the rate needs at once (no start-up hold for it).
    p = slo(startup=120.0)
    obs = Observation(DeploymentState("ready", 3), load(10.0, queue=2000.0))
    d, state = decide(p, initial_state(), obs, T0)
    assert R.OBJECTIVE_BACKLOG in d.reasons and d.desired == 59  # (+4 per 15 s rate limit)
    d, _ = decide(p, state, Observation(DeploymentState("ready", d.replicas), load(10.0)), T0 + 15)
    assert d.replicas == 3 and R.OBJECTIVE_STARTUP_HOLD not in d.reasons


def test_a_growing_queue_reveals_arrivals_a_started_rate_cannot() -> None:
    # A saturated deployment: 4 replicas x 16 slots busy with 4 s requests; the rate of
    # requests started reads its capacity (16/s). A queue growing by 4/s over a minute says
    # arrivals are ~20/s: more than the one extra replica the started rate alone asks for.
    p = slo(startup=600.0)
    flat, growing = initial_state(), initial_state()
    replicas = 4
    d_flat = d_grow = None
    for i in range(5):
        t = T0 + 15.0 * i
        d_flat, flat = decide(
            p,
            flat,
            Observation(DeploymentState("ready", replicas), load(16.0, 4.0, 64.0, 100.0)),
            t,
        )
        queued = 100.0 + 60.0 * i
        d_grow, growing = decide(
            p,
            growing,
            Observation(DeploymentState("ready", replicas), load(16.0, 4.0, 64.0, queued)),
            t,
        )
    assert d_flat is not None and d_grow is not None
    assert growing.objective is not None and growing.objective.growth > 2.0
    assert d_grow.desired is not None and d_flat.desired is not None
    assert d_grow.desired > d_flat.desired


def test_the_correction_comes_down_slower_than_it_goes_up() -> None:
    # The same evidence ratio, one way and the other: waits longer than predicted move the
    # factor four times as far as waits shorter than predicted.
    p = slo()
    start = replace(initial_state(), objective=None)
    ready = 3
    predicted = wait_quantile(ready * 16, 10.0, 4.0, 1.0, 0.99)
    assert predicted > 1.0  # above the evidence threshold (a fifth of 5 s)
    _, up = decide(
        p,
        start,
        Observation(DeploymentState("ready", ready), load(10.0, wait_p99=4 * predicted)),
        T0,
    )
    _, down = decide(
        p, start, Observation(DeploymentState("ready", ready), load(10.0, wait_p99=0.0)), T0
    )
    assert up.objective is not None and down.objective is not None
    assert up.objective.correction > 1.0 > down.objective.correction
    assert math.log(up.objective.correction) > -2 * math.log(down.objective.correction)


def test_no_scale_down_under_a_queue_that_outlasts_a_start_up() -> None:
    # 8 replicas asked for, 4 ready (64 slots, all busy with 100 s requests), 4 still
    # starting; the rate sizes fewer than 8. The in-flight floor reads 57.6 busy slots
    # (0.576/s), 6.4 spare: 0.064 requests/s leave the queue.
    p = slo(startup=180.0)

    def at(
        queued: float, state: CoreState | None = None, t: float = T0
    ) -> tuple[Decision, CoreState]:
        obs = Observation(DeploymentState("ready", 8, 4), load(0.5, 100.0, 64.0, queued))
        return decide(p, state or initial_state(), obs, t)

    assert (at(0.0)[0].desired or 0) < 8  # no queue: fewer
    # 30 queued take 470 s on the ready replicas, longer than a start-up: the replicas on
    # their way are needed, a scale-down would cancel them.
    held, _ = at(30.0)
    assert held.replicas == 8 and R.OBJECTIVE_BACKLOG in held.reasons
    assert "queue 30 clears in 469s on 4 ready: no scale down below 8" in held.message
    # 5 queued clear in 78 s, before a start-up: no reason to keep replicas still starting.
    small, _ = at(5.0)
    assert (small.desired or 0) < 8 and "no scale down" not in small.message
    # The same 5, seen growing: the rate read is the capacity, the queue does not clear.
    _, state = at(2.0)
    grown, _ = at(5.0, state, T0 + 15)
    assert grown.replicas == 8 and "clears never on 4 ready" in grown.message


# objective stage table: (policy with a targeted metric too, arrivals) -> count and codes.
# 10 requests/s of 4 s on replicas of 16 slots: 40 Erlangs, 3 replicas meet a 5 s p99 wait.
@pytest.mark.parametrize(
    ("hpa", "rate", "backlog", "count", "codes"),
    [
        (False, 10.0, 0.0, 3, (R.OBJECTIVE_SIZED,)),
        (False, 0.0, 0.0, 0, (R.OBJECTIVE_SIZED,)),  # no load: clamp raises it later
        (True, 10.0, 200.0, 20, (R.OBJECTIVE_SIZED,)),  # the HPA metric asks for more: max
    ],
)
def test_objective_stage(
    hpa: bool, rate: float, backlog: float, count: int, codes: tuple[str, ...]
) -> None:
    p = slo(hpa=hpa, forecast=False)
    values = {**load(rate, running=rate * 4.0), "backlog": backlog}
    ctx = context(p, Observation(DeploymentState("ready", 2), values))
    out = objective_stage(ctx, recommend_stage(ctx, proposal(2)))
    assert (out.replicas, out.objective_reasons) == (count, codes)
    assert out.memory is not None and out.memory.at == T0


def test_objective_stage_passes_a_policy_without_objective_on() -> None:
    ctx = context(policy(), Observation(DeploymentState("ready", 2), {"waiting": 1.0}))
    start = recommend_stage(ctx, proposal(2))
    assert objective_stage(ctx, start) is start


def _numeric_leaves(node: object, path: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    if isinstance(node, dict):
        return [leaf for k, v in node.items() for leaf in _numeric_leaves(v, (*path, k))]
    if isinstance(node, list):
        return [leaf for i, v in enumerate(node) for leaf in _numeric_leaves(v, (*path, i))]
    if isinstance(node, int | float) and not isinstance(node, bool):
        return [path]
    return []


def _replaced(node: Any, path: tuple[object, ...], value: object) -> Any:
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(node, dict):
        return {k: _replaced(v, rest, value) if k == head else v for k, v in node.items()}
    return [_replaced(v, rest, value) if i == head else v for i, v in enumerate(node)]


@pytest.mark.parametrize("wild", [10**400, -(10**400), 2**60])
def test_a_stored_number_out_of_range_is_refused_by_name_or_decided_on(wild: int) -> None:
    # JSON integers have no size limit: a stored state (a store edited by hand, a bug of
    # another version) may hold one past the float range in any numeric field. Reading it is
    # a ValueError naming the field (the runner then starts afresh), never an OverflowError;
    # a value that reads as valid must decide without raising.
    p = slo(down_window=300.0, startup=600.0)
    state = initial_state()
    replicas = 3
    for i in range(400):
        t = T0 + i * 60.0
        values = load(20 + (i % 9), 4.0, running=60.0, queue=(i % 5) * 3.0, wait_p99=2.0)
        d, state = decide(p, state, Observation(DeploymentState("ready", replicas), values), t)
        replicas = d.replicas
    state = with_override(state, 4, T0 + 10**6)
    stored = json.loads(json.dumps(to_dict(state)))
    leaves = _numeric_leaves(stored)
    assert len(leaves) > 20  # histories, actions, times, the objective memory, the override
    t = T0 + 400 * 60.0
    for path in leaves:
        bad = _replaced(stored, path, wild)
        try:
            back = from_dict(bad)
        except ValueError as exc:
            field = [part for part in path if isinstance(part, str)][-1]
            assert field in str(exc), (path, str(exc))
            continue
        decide(p, back, Observation(DeploymentState("ready", replicas), load(25.0)), t)
