"""Golden decision streams: the core's exact output over fixed scenarios, to refactor against.

Each scenario is a policy plus a closed loop (the next observation follows the decision, as
a provider would: create -> initializing -> ready, delete -> absent) over a few thousand
seeded, noisy observations. Every decision's action, replicas, reasons, message and desired
count, and the state after it (`to_dict`, as JSON), go into a running SHA-256; the digest is
kept per block of `BLOCK` decisions so a mismatch names where the streams part.

`tests/core/data/golden.json` holds the digests, the final state and the reason counts
(what each scenario exercises). Regenerate it, only from code whose decisions are known
right (it was first made on main before the core's speed work), with

    .venv/bin/python -m tests.core.golden            # writes tests/core/data/golden.json
    .venv/bin/python -m tests.core.golden --dump hpa  # one JSON line per decision, to diff
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from autoscaler.core import (
    Observation,
    decide,
    initial_state,
    to_dict,
    with_override,
    with_paused,
)
from autoscaler.core.queueing import wait_quantile
from autoscaler.core.status import DeploymentState
from autoscaler.policy.model import (
    Activation,
    Behavior,
    Cost,
    Deployment,
    Metric,
    Objective,
    ObjectiveSignals,
    OnDeploymentFailure,
    OnMetricFailure,
    Panic,
    Policy,
    PromQLSource,
    RatePolicy,
    Replicas,
    ScaleToZero,
    ScalingRules,
    Schedule,
    Target,
    Tolerance,
)

DATA = Path(__file__).parent / "data" / "golden.json"
BLOCK = 250
START = 1_700_000_000.0  # a Tuesday, 22:13:20 UTC
SOURCE = PromQLSource(url="http://127.0.0.1:9090", query="q")
CREATE = {"catalog_id": "m", "region": "r"}
Values = dict[str, float | None]
Traffic = Callable[[int, random.Random, int, int], Values]  # (step, rng, replicas, ready)


def _obs(
    status: str, replicas: int, metrics: Values, ready: int | None = None, startup: Any = None
) -> Observation:
    """The one place observations are built (the Observation type may change shape)."""
    state = DeploymentState(status, replicas, ready)  # type: ignore[arg-type]
    return Observation(state, metrics, startup_seconds=startup)


def _target(name: str, kind: str, value: float) -> Metric:
    return Metric(name, SOURCE, Target(kind, value))  # type: ignore[arg-type]


def _rules(window: float, cooldown: float = 0.0, *rates: RatePolicy, select: str = "max") -> Any:
    return ScalingRules(window, cooldown, tuple(rates), select)  # type: ignore[arg-type]


def _base(name: str, metrics: tuple[Metric, ...], lo: int, hi: int, **more: Any) -> Policy:
    deployment = Deployment("sim", name, CREATE)
    return Policy(name, deployment, Replicas(lo, hi), metrics, interval=15.0, **more)


# --- policies ---------------------------------------------------------------------------------

HPA_METRICS = (
    _target("waiting", "average_value", 5),
    _target("kv_cache", "utilization", 0.8),
    _target("backlog", "average_value", 20),
)
SIGNALS = ObjectiveSignals("arrivals", "service", None, "running", "waiting", "wait_p99")


def hpa() -> Policy:
    """benchmarks/bench_core.py's policy: HPA's default behavior."""
    return _base("hpa", HPA_METRICS, 1, 20)


def scheduled() -> Policy:
    """Schedule windows (a floor in Kolkata, a ceiling every half hour), a cost cap, rate
    policies with `min` select, cooldowns and an asymmetric tolerance."""
    behavior = Behavior(
        tolerance=Tolerance(0.05, 0.2),
        scale_up=_rules(
            180.0,
            150.0,
            RatePolicy("replicas", 2, 60.0),
            RatePolicy("percent", 50, 120.0),
            select="min",
        ),
        scale_down=_rules(120.0, 90.0, RatePolicy("percent", 30, 60.0)),
    )
    schedules = (
        Schedule("0 8 * * 1-5", 36000.0, "Asia/Kolkata", min=6),
        Schedule("*/30 * * * *", 600.0, "UTC", max=4),
    )
    cost = Cost(replica_hourly_usd=2.5, max_hourly_usd=40.0)
    return _base("sched", HPA_METRICS, 1, 30, behavior=behavior, schedules=schedules, cost=cost)


def zero() -> Policy:
    """Scale to zero with activation thresholds, panic, a fallback after failed reads, and a
    deployment-failure recreate."""
    behavior = Behavior(
        scale_up=_rules(
            0.0, 0.0, RatePolicy("percent", 100, 15.0), RatePolicy("replicas", 4, 15.0)
        ),
        scale_down=_rules(180.0, 0.0, RatePolicy("replicas", 2, 60.0)),
        panic=Panic(2.0, 400.0),
    )
    stz = ScaleToZero(600.0, (Activation("queue", 0.5), Activation("rps", 0.1)))
    metrics = (_target("queue", "average_value", 10), _target("rps", "value", 3.0))
    return _base(
        "zero",
        metrics,
        0,
        12,
        behavior=behavior,
        scale_to_zero=stz,
        on_metric_failure=OnMetricFailure(3, "replicas", 4),
        on_deployment_failure=OnDeploymentFailure("recreate", 30.0, 600.0),
    )


def limits() -> Policy:
    """No scale-down at all, no rate policy up but a cooldown, and no create spec."""
    behavior = Behavior(scale_up=_rules(0.0, 100.0), scale_down=_rules(0.0, 0.0, select="disabled"))
    policy = _base("limits", HPA_METRICS, 2, 20, behavior=behavior)
    return replace(policy, deployment=Deployment("sim", "limits", None))


def objective(forecast: bool = True) -> Policy:
    """benchmarks/bench_core.py's objective policy (forecast on), or without the forecast."""
    metrics = tuple(Metric(name, SOURCE) for _, name in SIGNALS.names())
    slo = Objective(SIGNALS, 16, 5.0, startup=180.0, forecast=forecast)
    return _base("slo" if forecast else "slo-plain", metrics, 1, 40, objective=slo)


def objective_slow() -> Policy:
    """Slow, variable requests against a tight objective: the search answers with its bound."""
    signals = replace(SIGNALS, service_time_cv="cv")
    metrics = tuple(Metric(name, SOURCE) for _, name in signals.names())
    slo = Objective(signals, 8, 0.25, startup=0.0, forecast=False)
    return _base("slo-slow", metrics, 1, 400, objective=slo)


def objective_hpa() -> Policy:
    """An objective with a service-time cv signal, a quantile of 0.9, an HPA metric beside
    it, a cost cap, rate policies and scale to zero: big loads (thousands of Erlangs) and a
    tight objective on slow requests walk the search far or answer with its bound."""
    signals = replace(SIGNALS, service_time_cv="cv")
    metrics = (
        *(Metric(name, SOURCE) for _, name in signals.names()),
        _target("kv", "utilization", 0.9),
    )
    slo = Objective(signals, 4, 0.5, quantile=0.9, startup=120.0, forecast=True)
    behavior = Behavior(
        scale_up=_rules(0.0, 0.0, RatePolicy("percent", 200, 60.0)),
        scale_down=_rules(
            300.0, 0.0, RatePolicy("percent", 20, 60.0), RatePolicy("replicas", 3, 60.0)
        ),
    )
    cost = Cost(replica_hourly_usd=1.0, max_hourly_usd=3000.0)
    return _base(
        "slo-hpa",
        metrics,
        0,
        5000,
        objective=slo,
        behavior=behavior,
        cost=cost,
        scale_to_zero=ScaleToZero(900.0, (Activation("arrivals", 0.0),)),
    )


# --- traffic ----------------------------------------------------------------------------------


def _noisy(rng: random.Random, value: float, share: float = 0.1) -> float:
    return max(0.0, value * (1.0 + rng.gauss(0.0, share)))


def _failing(rng: random.Random, values: Values, chance: float) -> Values:
    """Each read fails now and then: missing, None or NaN."""
    for name in list(values):
        roll = rng.random()
        if roll < chance / 3:
            del values[name]
        elif roll < 2 * chance / 3:
            values[name] = None
        elif roll < chance:
            values[name] = math.nan
        elif roll < 1.2 * chance:
            values[name] = -1.0
        elif roll < 1.25 * chance and name != "cv":  # a wild cv crashes main's core (k = inf)
            values[name] = 1e300
    return values


def hpa_traffic(i: int, rng: random.Random, replicas: int, ready: int) -> Values:
    phase = math.sin(i / 40.0)
    values: Values = {
        "waiting": _noisy(rng, max(0.0, 30 + 25 * phase)),
        "kv_cache": min(1.0, _noisy(rng, 0.5 + 0.3 * phase, 0.05)),
        "backlog": _noisy(rng, max(0.0, 100 + 90 * math.sin(i / 17.0))),
    }
    return _failing(rng, values, 0.01)


def zero_traffic(i: int, rng: random.Random, replicas: int, ready: int) -> Values:
    """Bursts with idle stretches long enough to delete, and quiet reads near the thresholds."""
    cycle = i % 400
    if cycle < 150:
        base = 20 + 15 * math.sin(i / 9.0) + (80 if cycle % 50 == 0 else 0)
    elif cycle < 180:
        base = 0.3 * rng.random()
    else:
        base = 0.0
    values: Values = {"queue": _noisy(rng, base, 0.3), "rps": _noisy(rng, base / 10, 0.2)}
    if 1200 <= i < 1230:  # an outage of one source: the fallback rule
        values["rps"] = None
    return _failing(rng, values, 0.005)


def slo_traffic(
    slower: float, cv: float, scale: float, conc: int, q: float, service_s: float = 4.0
) -> Traffic:
    """A daily wave of arrivals (times `scale`), 4 s requests `slower` than declared, a
    queue now and then, quiet stretches, and the p`q` wait the ready replicas would give."""

    def traffic(i: int, rng: random.Random, replicas: int, ready: int) -> Values:
        day = math.sin(2 * math.pi * i / 288.0)
        rate = scale * max(0.0, 25 + 15 * day + 3 * math.sin(i / 7.0)) * (1 + rng.gauss(0, 0.05))
        quiet = i % 700 > 660
        if quiet:
            rate = 0.0
        elif i % 997 == 500:  # a wild reading: the offered load overflows
            rate = 1e308
        service = service_s * (1 + rng.gauss(0, 0.03))
        seen = wait_quantile(ready * conc, rate, service * slower, cv, q)
        values: Values = {
            "arrivals": rate,
            "service": math.nan if quiet else service,
            "cv": math.nan if quiet else cv * (1 + rng.gauss(0, 0.1)),
            "running": min(rate * service, ready * conc),
            "waiting": 0.0 if quiet else (rng.choice((5.0, 40.0, 400.0)) if i % 13 == 0 else 0.0),
            "wait_p99": math.nan if quiet else min(seen, 120.0),
            "kv": min(1.0, _noisy(rng, 0.6 + 0.3 * day, 0.05)),
        }
        return _failing(rng, values, 0.004)

    return traffic


def run(
    policy: Policy,
    traffic: Traffic,
    steps: int,
    interval: float,
    seed: int,
    admin: bool = False,
    measured_startup: bool = False,
) -> Iterator[tuple[Any, Any]]:
    """(decision, next state) per step of a closed loop with a stand-in provider.

    Long because it is the provider stand-in: statuses, ready replicas that lag, injected
    failures and the admin's pause and override, in one loop."""
    rng = random.Random(seed)
    state = initial_state()
    status, replicas, ready, wait = "ready", 2, 2, 0
    for i in range(steps):
        now = START + i * interval
        if admin and i == steps // 3:
            state = with_override(state, 7, now + 120 * interval)
        if admin and i == steps // 2:
            state = with_paused(state, True)
        if admin and i == steps // 2 + 30:
            state = with_paused(state, False, now)
        roll = rng.random()
        if status == "ready" and roll < 0.002:
            status, wait = "failed", 25
        elif status == "ready" and roll < 0.0025:  # gone behind the daemon's back
            status, replicas, ready = "absent", 0, 0
        values = traffic(i, rng, replicas, ready)
        startup = 120 + 90 * rng.random() if measured_startup and i % 97 == 5 else None
        obs = _obs(status, replicas, values, ready if status == "ready" else None, startup)
        decision, state = decide(policy, state, obs, now)
        yield decision, state
        if decision.action == "delete":
            status, replicas, ready, wait = "terminating", replicas, ready, 2
        elif decision.action == "create":
            status, replicas, ready, wait = "initializing", decision.replicas, 0, 3
        elif decision.action == "scale":
            replicas = decision.replicas
            ready = min(ready, replicas)
        elif wait > 0:
            wait -= 1
            if wait == 0:
                status = {"terminating": "absent", "initializing": "ready"}.get(status, "ready")
                replicas = 0 if status == "absent" else replicas
                ready = 0
        if status == "ready":
            ready = min(replicas, ready + 2)


SCENARIOS: dict[str, Callable[[], Iterator[tuple[Any, Any]]]] = {
    "hpa": lambda: run(hpa(), hpa_traffic, 3000, 15.0, 1),
    "sched": lambda: run(scheduled(), hpa_traffic, 3000, 60.0, 2, admin=True),
    "zero": lambda: run(zero(), zero_traffic, 3000, 15.0, 3, admin=True),
    "slo": lambda: run(objective(), slo_traffic(1.3, 1.0, 1.0, 16, 0.99), 2000, 15.0, 4),
    "slo-week": lambda: run(
        objective(), slo_traffic(0.8, 1.0, 1.0, 16, 0.99), 3000, 300.0, 5, measured_startup=True
    ),
    "limits": lambda: run(limits(), hpa_traffic, 1000, 15.0, 8),
    "slo-plain": lambda: run(
        objective(False), slo_traffic(1.6, 1.0, 0.3, 16, 0.99), 2000, 15.0, 6, admin=True
    ),
    "slo-slow": lambda: run(
        objective_slow(), slo_traffic(1.0, 3.0, 0.2, 8, 0.99, 60.0), 1000, 30.0, 9
    ),
    "slo-hpa": lambda: run(
        objective_hpa(), slo_traffic(1.1, 2.0, 60.0, 4, 0.9), 2500, 60.0, 7, measured_startup=True
    ),
}


def records(name: str) -> Iterator[dict[str, Any]]:
    """One scenario's decisions, each with the state after it."""
    for decision, state in SCENARIOS[name]():
        yield {
            "action": decision.action,
            "replicas": decision.replicas,
            "reasons": list(decision.reasons),
            "message": decision.message,
            "desired": decision.desired,
            "state": to_dict(state),
        }


def summary(name: str) -> dict[str, Any]:
    """The digests of one scenario's stream (one per `BLOCK` decisions), its last state and
    how often each reason code came up."""
    digest = hashlib.sha256()
    blocks: list[str] = []
    reasons: Counter[str] = Counter()
    last: dict[str, Any] = {}
    for n, rec in enumerate(records(name), 1):
        digest.update(json.dumps(rec, sort_keys=True).encode())
        reasons.update(rec["reasons"])
        last = rec
        if n % BLOCK == 0:
            blocks.append(digest.hexdigest()[:16])
    blocks.append(digest.hexdigest()[:16])
    return {"blocks": blocks, "final": last, "reasons": dict(sorted(reasons.items()))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dump", metavar="SCENARIO", help="print one scenario's decisions")
    args = parser.parse_args()
    if args.dump:
        for rec in records(args.dump):
            sys.stdout.write(json.dumps(rec, sort_keys=True) + "\n")
        return
    out = {name: summary(name) for name in SCENARIOS}
    DATA.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    print(f"wrote {DATA}")


if __name__ == "__main__":
    main()
