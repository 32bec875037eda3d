"""`autoscaler simulate`: input checks, the run and the side-by-side table (options: `options.py`).

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
from autoscaler.simulate.options import add_arguments as add_arguments  # the command's entry
from autoscaler.simulate.results import render_table
from autoscaler.simulate.run import Prepared, SimSettings, SimulationError, prepare, simulate
from autoscaler.simulate.service import ServiceModel, ServiceModelError, splitwise_model
from autoscaler.simulate.signals import BindingError, bind_metrics, parse_signal_options
from autoscaler.simulate.traces import (
    ColumnMap,
    RequestTrace,
    TraceError,
    load_request_trace,
    load_trace,
)


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
    columns = ColumnMap(
        args.time_column, args.input_column, args.output_column, args.time_unit, tuple(args.where)
    )
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
        if isinstance(trace, RequestTrace) and trace.out_of_order:
            print(
                f"autoscaler simulate: note: {trace.first_out_of_order}: {trace.out_of_order:,} "
                "row(s) arrive before the row above them; replayed in arrival order",
                file=sys.stderr,
            )
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
