"""Decision-core throughput and state size.

A 3-metric policy (HPA default behavior: 300 s down window, 15 s rate periods), evaluated every
15 s of simulated time on a varying load, after a warm-up long enough to fill every window
(steady-state state). Prints decisions per second on one core and the JSON size of the state.

    .venv/bin/python benchmarks/bench_core.py [--decisions N]

Targets (issue 2): >= 50,000 decisions/s, <= 4 KB of state per policy. `--objective` also
times a policy sized by its latency objective (issue 11: >= 50,000 decisions/s with it on,
<= 8 KB of state with a full hour-of-week profile): five signals, forecast on, a queue now and
then, an observed wait from replicas 1.3 times slower than declared driving the correction.

It times whichever core is imported and says which: the sources, or the build compiled with
mypyc (setup.py; the Docker image's). To time the compiled one, from the checkout's root:

    python3 -m venv .build-venv && .build-venv/bin/pip install mypy 'setuptools>=77'
    AUTOSCALER_COMPILE=1 .build-venv/bin/pip wheel --no-build-isolation --no-deps -w dist .
    python3 -m venv .compiled && .compiled/bin/pip install dist/autoscaler-*.whl
    cd benchmarks && ../.compiled/bin/python bench_core.py --objective   # not the checkout's
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import replace

from autoscaler.core import COMPILED, CoreState, Observation, decide, initial_state, to_dict
from autoscaler.core.queueing import wait_quantile
from autoscaler.core.types import DeploymentState
from autoscaler.policy.model import (
    Deployment,
    Metric,
    Objective,
    ObjectiveSignals,
    Policy,
    PrometheusSource,
    PromQLSource,
    RedisSource,
    Replicas,
    Schedule,
    Target,
)

INTERVAL = 15.0
START = 1_700_000_000.0


def bench_policy() -> Policy:
    return Policy(
        name="bench",
        deployment=Deployment("sim", "bench", {"model": "m"}),
        replicas=Replicas(1, 20),
        metrics=(
            Metric(
                "waiting",
                PrometheusSource(urls=("http://x/metrics",), metric="w"),
                Target("average_value", 5),
            ),
            Metric("kv_cache", PromQLSource(url="http://x", query="q"), Target("utilization", 0.8)),
            Metric("backlog", RedisSource(url="redis://x", key="k"), Target("average_value", 20)),
        ),
        interval=INTERVAL,
    )


SIGNALS = ObjectiveSignals(
    arrival_rate="arrivals",
    service_time="service",
    in_flight="running",
    queue="waiting",
    observed_wait="wait_p99",
)


def objective_policy() -> Policy:
    source = PromQLSource(url="http://x", query="q")
    return Policy(
        name="bench-slo",
        deployment=Deployment("sim", "bench", {"model": "m"}),
        replicas=Replicas(1, 40),
        metrics=tuple(Metric(name, source) for _, name in SIGNALS.names()),
        interval=INTERVAL,
        objective=Objective(signals=SIGNALS, concurrency=16, queue_wait=5.0, startup=180.0),
    )


def objective_observations(n: int) -> list[tuple[float, dict[str, float | None]]]:
    """A wave of 7 to 43 requests/s of 4 s (28 to 172 Erlangs, 2 to 12 replicas of 16 slots),
    a queue every 13th step."""
    out = []
    for i in range(n):
        rate = 25 + 15 * math.sin(i / 40.0) + 3 * math.sin(i / 7.0)
        out.append(
            (
                START + i * INTERVAL,
                {
                    "arrivals": rate,
                    "service": 4.0,
                    "running": rate * 4.0,
                    "waiting": 30.0 if i % 13 == 0 else 0.0,
                    "wait_p99": 0.0,  # filled in by `with_feedback`
                },
            )
        )
    return out


def with_feedback(
    policy: Policy, obs: list[tuple[float, dict[str, float | None]]], slower: float
) -> list[tuple[float, dict[str, float | None]]]:
    """The observed p99 wait of each step: what M/G/c gives on the replicas the core chose
    (from the same start as `timed_rate`), with replicas `slower` times slower than the
    service-time signal says, so the correction has something true to learn."""
    out = []
    state, replicas = initial_state(), 3
    for t, metrics in obs:
        rate, service = metrics["arrivals"] or 0.0, metrics["service"] or 0.0
        seen = wait_quantile(replicas * 16, rate, service * slower, 1.0, 0.99)
        metrics = {**metrics, "wait_p99": min(seen, 120.0)}
        out.append((t, metrics))
        decision, state = decide(
            policy, state, Observation(DeploymentState("ready", replicas), metrics), t
        )
        replicas = decision.replicas
    return out


def observations(n: int) -> list[tuple[float, dict[str, float | None]]]:
    """A daily-ish wave with noise-free steps: enough change to exercise every stage."""
    out = []
    for i in range(n):
        phase = math.sin(i / 40.0)
        out.append(
            (
                START + i * INTERVAL,
                {
                    "waiting": max(0.0, 30 + 25 * phase),
                    "kv_cache": 0.5 + 0.3 * phase,
                    "backlog": max(0.0, 100 + 90 * math.sin(i / 17.0)),
                },
            )
        )
    return out


def run(
    policy: Policy,
    state: CoreState,
    obs: list[tuple[float, dict[str, float | None]]],
    replicas: int,
) -> tuple[CoreState, int, int]:
    biggest = 0
    recorded = 0
    for t, metrics in obs:
        decision, state = decide(
            policy, state, Observation(DeploymentState("ready", replicas), metrics), t
        )
        replicas = decision.replicas
        # The daemon records every decision's reasons and message: read them as it does, so a
        # message formatted late (or never) would still be paid for here.
        recorded += len(decision.reasons) + len(decision.message)
        size = len(state.down_history) + len(state.up_history) + len(state.events)
        biggest = max(biggest, size)
    assert recorded > 0
    return state, replicas, biggest


def timed_rate(
    policy: Policy, obs: list[tuple[float, dict[str, float | None]]], repeats: int
) -> tuple[float, float, CoreState]:
    """Best and median decisions/s over `repeats` passes, each from the warmed-up state."""
    warm, replicas, _ = run(policy, initial_state(), obs[:100], 3)  # fills the windows
    timed = obs[100:]
    rates = []
    state = warm
    for _ in range(repeats):
        start = time.perf_counter()
        state, _, _ = run(policy, warm, timed, replicas)
        rates.append(len(timed) / (time.perf_counter() - start))
    rates.sort()
    return rates[-1], rates[len(rates) // 2], state


def core_build() -> str:
    """Which core is imported: the sources or the compiled modules (setup.py)."""
    path = sys.modules["autoscaler.core.decide"].__file__
    return f"{'compiled with mypyc' if COMPILED else 'interpreted'} ({path})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=50_000, help="per pass")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--objective", action="store_true", help="also time objective sizing")
    args = parser.parse_args()
    print(f"core: {core_build()}")
    policy = bench_policy()
    obs = observations(args.decisions + 100)
    best, median, state = timed_rate(policy, obs, args.repeats)
    # Largest state seen over a pass (the windows hold more entries while load falls).
    largest = 0
    s, r = initial_state(), 3
    for t, metrics in obs[: min(len(obs), 5000)]:
        d, s = decide(policy, s, Observation(DeploymentState("ready", r), metrics), t)
        r = d.replicas
        largest = max(largest, len(json.dumps(to_dict(s))))
    print(f"3-metric policy, 300 s down window, 15 s interval, {args.decisions} decisions/pass")
    print(f"decisions/s: best {best:,.0f}, median {median:,.0f}  (target >= 50,000)")
    print(
        f"state JSON bytes: steady state {len(json.dumps(to_dict(state)))}, "
        f"largest over 5000 steps {largest}  (target <= 4096)"
    )
    scheduled = replace(
        policy, schedules=(Schedule("0 8 * * 1-5", 36000.0, "Asia/Kolkata", min=2),)
    )
    best, median, _ = timed_rate(scheduled, obs[: args.decisions // 5 + 100], args.repeats)
    print(f"with one schedule window: best {best:,.0f}, median {median:,.0f} decisions/s")
    if args.objective:
        bench_objective(args.decisions, args.repeats)


def bench_objective(decisions: int, repeats: int) -> None:
    policy = objective_policy()
    obs = with_feedback(policy, objective_observations(decisions + 100), 1.3)
    best, median, state = timed_rate(policy, obs, repeats)
    print(f"objective policy (5 signals, forecast on), {decisions} decisions/pass")
    print(f"decisions/s: best {best:,.0f}, median {median:,.0f}  (target >= 50,000)")
    assert state.objective is not None
    print(f"correction factor at the end: {state.objective.correction:.3g}")
    # A full profile: two weeks of evaluations every 5 minutes.
    s, r = initial_state(), 3
    for t, metrics in objective_observations(2 * 7 * 24 * 12):
        d, s = decide(
            policy, s, Observation(DeploymentState("ready", r), metrics), START + (t - START) * 20
        )
        r = d.replicas
    print(f"state JSON bytes with a full hour-of-week profile: {len(json.dumps(to_dict(s)))}")
    print("  (target <= 8192)")


if __name__ == "__main__":
    main()
