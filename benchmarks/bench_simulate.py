"""Seconds `autoscaler simulate` takes on the two sizes the issue names (one run each).

1. A one-hour request trace of 20,000 requests (request-level mode): the Mooncake hour
   superposed with a copy of itself shifted by 30 minutes (wrapped), first 20,000 requests.
2. The ServeGen m-mid rate trace, 14 days at --rate-scale 0.003 (about 6.5 million requests;
   aggregated mode, 1 s steps).

Each figure covers preparing the trace (arrivals, service times, bound), the run through the
real decision core, and the summary; the file outputs (CSV, PNG) are timed separately.
Run: .venv/bin/python benchmarks/bench_simulate.py
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from autoscaler.policy.loader import load_policy_file
from autoscaler.simulate.baselines import baseline_controller
from autoscaler.simulate.controllers import PolicyController
from autoscaler.simulate.results import summarize
from autoscaler.simulate.run import SimSettings, prepare, run_one, simulate
from autoscaler.simulate.signals import bind_metrics
from autoscaler.simulate.traces import RequestTrace, load_request_trace, load_trace

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data" / "traces"
MOONCAKE = DATA / "mooncake_conversation_1h.csv"
SERVEGEN = DATA / "servegen_language_m_mid_14d_rate10min.csv"
POLICY = ROOT / "policies" / "llm-chat.yaml"
SLO_POLICY = ROOT / "policies" / "llm-slo.yaml"


def twenty_thousand() -> RequestTrace:
    hour = load_request_trace(str(MOONCAKE))
    shifted = (hour.arrival_s + 1800.0) % 3600.0
    arrivals = np.concatenate([hour.arrival_s, shifted])
    order = np.argsort(arrivals, kind="stable")[:20_000]
    inputs = np.concatenate([hour.input_tokens, hour.input_tokens])[order]
    outputs = np.concatenate([hour.output_tokens, hour.output_tokens])[order]
    arrivals = arrivals[order]
    return RequestTrace(arrivals - arrivals[0], inputs, outputs, "mooncake x2", "bench")


def controllers(prepared_peak: int) -> list:  # type: ignore[type-arg]
    policy = load_policy_file(POLICY)[0]
    chat = PolicyController(policy=policy, bindings=bind_metrics(policy, {}))
    objective = load_policy_file(SLO_POLICY)[0]
    slo = PolicyController(policy=objective, bindings=bind_metrics(objective, {}))
    hpa = baseline_controller(
        "hpa",
        max_concurrency=16,
        max_replicas=max(2 * prepared_peak, 8),
        peak_replicas=prepared_peak,
        replica_hourly_usd=None,
    )
    return [chat, slo, hpa]


def timed(label: str, trace: object, sizes: object, settings: SimSettings) -> None:
    started = time.perf_counter()
    prepared = prepare(trace, sizes, settings)  # type: ignore[arg-type]
    prep = time.perf_counter() - started
    for controller in controllers(prepared.peak_replicas):
        t0 = time.perf_counter()
        result = run_one(controller, prepared, settings)
        summary = summarize(result, settings.slo_wait_s, prepared.bound_replica_seconds, 2.5)
        clairvoyant = prepared.reference.replica_seconds
        seconds = time.perf_counter() - t0
        print(
            f"{label}: {controller.name:9s} {prepared.mode:10s} "
            f"{summary['requests_total']:>9} requests  {controller.evaluations:>7} decide() calls  "
            f"prepare {prep:5.2f} s + run {seconds:5.2f} s = {prep + seconds:5.2f} s  "
            f"(x clairvoyant {summary['billed_replica_seconds'] / clairvoyant:.3f})"
        )
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        simulate(controllers(prepared.peak_replicas)[:1], prepared, settings, Path(out))
        print(
            f"{label}: one run with every output file (CSV, timeline, PNG): "
            f"{time.perf_counter() - t0:5.2f} s"
        )


def main() -> None:
    timed("20k-request hour", twenty_thousand(), None, SimSettings())
    servegen = load_trace(str(SERVEGEN))
    sizes = load_request_trace(str(MOONCAKE))
    timed("ServeGen 14 days", servegen, sizes, SimSettings(rate_scale=0.003))


if __name__ == "__main__":
    main()
