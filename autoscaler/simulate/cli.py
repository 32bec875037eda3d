"""`autoscaler simulate`: options, input checks and the side-by-side table.

Everything the user can get wrong (files, columns, metric bindings, option values) is reported
as one clear line and exit code 2; the work itself lives in `run.py`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from autoscaler.policy.model import Policy
from autoscaler.simulate.baselines import BASELINES, baseline_controller
from autoscaler.simulate.controllers import Controller, PolicyController
from autoscaler.simulate.results import render_table
from autoscaler.simulate.run import Prepared, SimSettings, SimulationError, prepare, simulate
from autoscaler.simulate.service import ServiceModel, ServiceModelError, splitwise_model
from autoscaler.simulate.signals import SIGNALS, BindingError, bind_metrics, parse_signal_options
from autoscaler.simulate.traces import (
    TIME_UNITS,
    ColumnMap,
    RequestTrace,
    TraceError,
    load_request_trace,
    load_trace,
)

DEFAULT_PERF_MODEL = Path(__file__).resolve().parent / "data" / "splitwise_perf_model.csv"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options, in groups as `--help` shows them."""
    _inputs(parser)
    _service(parser)
    _deployment(parser)
    _signals(parser)
    _cost(parser)
    _columns(parser)
    _run(parser)


def _inputs(parser: argparse.ArgumentParser) -> None:
    """What to simulate: the trace, the policies and baselines to run on it, where results go."""
    p = parser.add_argument_group("what to simulate")
    p.add_argument("--trace", required=True, metavar="FILE", help="request or rate trace (CSV)")
    p.add_argument("--policy", action="append", default=[], metavar="FILE", help="policy file")
    p.add_argument(
        "--baseline",
        action="append",
        default=[],
        metavar="NAME",
        help=f"built-in baseline: {', '.join(BASELINES)}, or all",
    )
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the results")
    p.add_argument("--seed", type=int, default=0, help="seed for generated arrivals (0)")


def _service(parser: argparse.ArgumentParser) -> None:
    """Service model: how fast one replica serves a request."""
    p = parser.add_argument_group("service model")
    p.add_argument(
        "--max-concurrency",
        type=int,
        default=16,
        metavar="N",
        help="requests one replica serves at once (16)",
    )
    p.add_argument(
        "--prefill-tokens-per-s",
        type=float,
        default=9000.0,
        metavar="X",
        help="prompt tokens per second per request (9000)",
    )
    p.add_argument(
        "--decode-tokens-per-s",
        type=float,
        default=30.0,
        metavar="Y",
        help="output tokens per second per request (30)",
    )
    p.add_argument(
        "--service-model",
        metavar="SPEC",
        help="splitwise:MODEL:HARDWARE[:TP], calibrated on the Splitwise perf model",
    )
    p.add_argument(
        "--perf-model-file",
        default=str(DEFAULT_PERF_MODEL),
        metavar="FILE",
        help="Splitwise perf model CSV for --service-model",
    )


def _deployment(parser: argparse.ArgumentParser) -> None:
    """Deployment and SLO: how long the provider takes, and what counts as too slow."""
    p = parser.add_argument_group("deployment and SLO")
    p.add_argument(
        "--provision-seconds",
        type=float,
        default=180.0,
        metavar="S",
        help="a new replica's start-up after a scale call (180)",
    )
    p.add_argument(
        "--create-seconds",
        type=float,
        default=600.0,
        metavar="S",
        help="deploying again from zero until ready (600)",
    )
    p.add_argument(
        "--delete-seconds", type=float, default=30.0, metavar="S", help="delete until absent (30)"
    )
    p.add_argument(
        "--slo-wait",
        type=float,
        default=5.0,
        metavar="S",
        help="queueing-delay target in seconds (5)",
    )
    p.add_argument(
        "--queue-timeout",
        type=float,
        default=None,
        metavar="S",
        help="drop a request after waiting this long (default: never)",
    )


def _signals(parser: argparse.ArgumentParser) -> None:
    """Signals and rate traces: what policies read, and how a rate trace becomes requests."""
    p = parser.add_argument_group("signals and rate traces")
    p.add_argument(
        "--signal",
        action="append",
        default=[],
        metavar="METRIC=SIGNAL",
        help=f"bind a policy metric to a simulated signal: {'|'.join(SIGNALS)}",
    )
    p.add_argument(
        "--sizes", metavar="FILE", help="request trace to draw token sizes from (rate traces)"
    )
    p.add_argument(
        "--rate-scale",
        type=float,
        default=1.0,
        metavar="K",
        help="multiply a rate trace's rates by K (1)",
    )
    p.add_argument(
        "--keep-cv",
        action="store_true",
        help="keep rate_cv as written when --rate-scale < 1 (default: thin it with the rate)",
    )
    p.add_argument(
        "--fill-gaps",
        action="store_true",
        help="rate traces: read windows with rate 0 and no rate_cv as gaps in collection and "
        "interpolate them from their neighbours",
    )


def _cost(parser: argparse.ArgumentParser) -> None:
    """Cost: what a replica costs and from when."""
    p = parser.add_argument_group("cost")
    p.add_argument(
        "--bill-from-ready",
        action="store_true",
        help="bill replicas from ready instead of from the call",
    )
    p.add_argument(
        "--replica-hourly-usd",
        type=float,
        default=2.5,
        metavar="USD",
        help="USD per replica-hour for every run of the simulation, policies and baselines "
        "alike (a policy's own cost.replica_hourly_usd only feeds its cost cap) (2.5)",
    )


def _columns(parser: argparse.ArgumentParser) -> None:
    """Request trace columns: where a request trace keeps its fields."""
    p = parser.add_argument_group("request trace columns")
    p.add_argument("--time-column", metavar="NAME", help="request trace: arrival time column")
    p.add_argument("--input-column", metavar="NAME", help="request trace: input tokens column")
    p.add_argument("--output-column", metavar="NAME", help="request trace: output tokens column")
    p.add_argument("--time-unit", choices=TIME_UNITS, help="arrival times as iso, s or ms")


def _run(parser: argparse.ArgumentParser) -> None:
    """Run: the simulation's mode, span, start and outputs."""
    p = parser.add_argument_group("run")
    p.add_argument(
        "--mode",
        choices=("auto", "request", "aggregated"),
        default="auto",
        help="request-level, aggregated (fluid) or auto by trace size (auto)",
    )
    p.add_argument(
        "--step-seconds", type=float, default=1.0, metavar="S", help="aggregated mode time step (1)"
    )
    p.add_argument(
        "--duration",
        type=float,
        default=None,
        metavar="S",
        help="simulate only the first S seconds of the trace",
    )
    p.add_argument(
        "--initial-replicas",
        type=int,
        default=None,
        metavar="N",
        help="replicas ready at the start (default: enough for the opening load)",
    )
    p.add_argument(
        "--warmup-seconds",
        type=float,
        default=300.0,
        metavar="S",
        help="controllers observe but do not act for the first S seconds while the deployment "
        "holds its opening size, so their windows start full (300)",
    )
    p.add_argument(
        "--max-replicas",
        type=int,
        default=None,
        metavar="N",
        help="baselines' replicas.max (default: 2 x the static peak, at least 8)",
    )
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")


def _fail(message: str) -> int:
    print(f"autoscaler simulate: {message}", file=sys.stderr)
    return 2


def _check(args: argparse.Namespace) -> str | None:
    positive = {
        "--max-concurrency": args.max_concurrency,
        "--prefill-tokens-per-s": args.prefill_tokens_per_s,
        "--decode-tokens-per-s": args.decode_tokens_per_s,
        "--slo-wait": args.slo_wait,
        "--rate-scale": args.rate_scale,
        "--step-seconds": args.step_seconds,
        "--replica-hourly-usd": args.replica_hourly_usd,
    }
    for flag, value in positive.items():
        if not value > 0:
            return f"{flag} must be > 0 (got {value:g})"
    for flag, value in (
        ("--provision-seconds", args.provision_seconds),
        ("--create-seconds", args.create_seconds),
        ("--delete-seconds", args.delete_seconds),
        ("--warmup-seconds", args.warmup_seconds),
    ):
        if not value >= 0:
            return f"{flag} must be >= 0 (got {value:g})"
    for flag, optional in (
        ("--queue-timeout", args.queue_timeout),
        ("--duration", args.duration),
    ):
        if optional is not None and not optional > 0:
            return f"{flag} must be > 0 (got {optional:g})"
    if args.initial_replicas is not None and args.initial_replicas < 0:
        return f"--initial-replicas must be >= 0 (got {args.initial_replicas})"
    if args.max_replicas is not None and args.max_replicas < 1:
        return f"--max-replicas must be >= 1 (got {args.max_replicas})"
    if not args.policy and not args.baseline:
        return "nothing to simulate: give --policy FILE and/or --baseline NAME"
    for name in args.baseline:
        if name != "all" and name not in BASELINES:
            return f"--baseline {name!r}: unknown; one of {', '.join(BASELINES)}, all"
    return None


def _policies(paths: Sequence[str]) -> list[Policy]:
    from autoscaler.policy.errors import ValidationFailed
    from autoscaler.policy.loader import load_policy_file

    policies = []
    for path in paths:
        try:
            policies.extend(load_policy_file(path))
        except ValidationFailed as exc:
            raise SimulationError(str(exc)) from None
    return policies


def run(args: argparse.Namespace) -> int:
    problem = _check(args)
    if problem:
        return _fail(problem)
    columns = ColumnMap(args.time_column, args.input_column, args.output_column, args.time_unit)
    try:
        signal_map = parse_signal_options(args.signal)
        service = ServiceModel(
            args.prefill_tokens_per_s,
            args.decode_tokens_per_s,
            label=f"input/{args.prefill_tokens_per_s:g} + output/{args.decode_tokens_per_s:g}",
        )
        if args.service_model:
            service = splitwise_model(
                args.service_model, args.perf_model_file, args.max_concurrency
            )
        trace = load_trace(args.trace, columns)
        sizes: RequestTrace | None = None
        if args.sizes:
            if isinstance(trace, RequestTrace):
                return _fail(
                    f"--sizes applies to rate traces only; {args.trace} is a request trace "
                    "with its own token sizes"
                )
            sizes = load_request_trace(args.sizes)
        settings = _settings(args, service)
        policies = _policies(args.policy)
        prepared = prepare(trace, sizes, settings)
        controllers = _controllers(args, policies, signal_map, prepared)
    except (TraceError, BindingError, ServiceModelError, SimulationError) as exc:
        return _fail(str(exc))
    try:
        document = simulate(
            controllers,
            prepared,
            settings,
            Path(args.out),
            plots=not args.no_plots,
            title=Path(args.trace).name,
        )
    except OSError as exc:
        return _fail(f"--out {args.out}: {exc}")
    print(render_table({**document["runs"], **document["references"]}))
    print(
        f"bound: {prepared.bound_replica_seconds / 3600:.1f} replica-hours, clairvoyant "
        f"{prepared.reference.replica_seconds / 3600:.1f} ({prepared.mode} mode, "
        f"{args.replica_hourly_usd:g} USD per replica-hour for every run); results in {args.out}"
    )
    return 0


def _settings(args: argparse.Namespace, service: ServiceModel) -> SimSettings:
    """The simulation's settings from the checked options."""
    return SimSettings(
        max_concurrency=args.max_concurrency,
        service=service,
        provision_s=args.provision_seconds,
        create_s=args.create_seconds,
        delete_s=args.delete_seconds,
        slo_wait_s=args.slo_wait,
        queue_timeout_s=args.queue_timeout,
        bill_from_ready=args.bill_from_ready,
        seed=args.seed,
        rate_scale=args.rate_scale,
        keep_cv=args.keep_cv,
        fill_gaps=args.fill_gaps,
        mode=args.mode,
        step_s=args.step_seconds,
        duration_s=args.duration,
        replica_hourly_usd=args.replica_hourly_usd,
        initial_replicas=args.initial_replicas,
        warmup_s=args.warmup_seconds,
    )


def _controllers(
    args: argparse.Namespace,
    policies: Sequence[Policy],
    signal_map: dict[str, str],
    prepared: Prepared,
) -> list[Controller]:
    """One controller per policy (its metrics bound to signals) and per baseline, names made
    unique; SimulationError when a --signal names a metric no policy has."""
    controllers: list[Controller] = []
    used: set[str] = set()
    for policy in policies:
        bindings = bind_metrics(policy, signal_map)
        used.update(signal_map.keys() & {m.name for m in policy.metrics})
        controllers.append(
            PolicyController(
                policy=policy,
                bindings=bindings,
                name=_unique(policy.name, controllers),
                epoch_offset=prepared.epoch_offset,
            )
        )
    stray = sorted(set(signal_map) - used)
    if stray:
        raise SimulationError(f"--signal names metric(s) no policy has: {', '.join(stray)}")
    names = list(BASELINES) if "all" in args.baseline else list(dict.fromkeys(args.baseline))
    max_replicas = args.max_replicas or max(2 * prepared.peak_replicas, 8)
    for name in names:
        controller = baseline_controller(
            name,
            max_concurrency=args.max_concurrency,
            max_replicas=max_replicas,
            peak_replicas=prepared.peak_replicas,
            replica_hourly_usd=None,
        )
        controller.name = _unique(controller.name, controllers)
        controllers.append(controller)
    return controllers


def _unique(name: str, controllers: Sequence[Controller]) -> str:
    taken = {c.name for c in controllers}
    if name not in taken:
        return name
    n = 2
    while f"{name}-{n}" in taken:
        n += 1
    return f"{name}-{n}"
