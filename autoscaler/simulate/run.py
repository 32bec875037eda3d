"""One simulation job: a trace, the runs to compare, the settings; results written to a folder.

`prepare` turns a trace into what the engines need (requests or per-step amounts, the bound,
the warm start); `simulate` runs every controller over it and writes summary.json, the CSVs
and the plots. The command line (`cli.py`) only parses options and calls these.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from autoscaler.simulate.aggregated import (
    ServiceBins,
    fluid_in_flight,
    rate_step_arrivals,
    request_step_arrivals,
    run_aggregated,
    service_bins,
)
from autoscaler.simulate.controllers import Controller
from autoscaler.simulate.deployment import DeploymentTiming
from autoscaler.simulate.engine import RunResult, RunSettings, run_requests
from autoscaler.simulate.plot import LoadSeries, fluid_load, plot_compare, plot_run, request_load
from autoscaler.simulate.reference import Reference, clairvoyant, demand_profile, restart_costs
from autoscaler.simulate.results import (
    reference_summaries,
    render_table,
    summarize,
    write_requests_csv,
    write_summary,
    write_timeline_csv,
)
from autoscaler.simulate.service import ServiceModel, request_bound
from autoscaler.simulate.traces import RateTrace, RequestTrace, requests_from_rates

Mode = Literal["auto", "request", "aggregated"]

# Above this many requests the request-level engine would take more than about a minute on
# one core; auto mode switches to the aggregated engine.
REQUEST_MODE_LIMIT = 1_500_000
# Request mode holds every request (and a rate trace's drawn arrivals) in memory: 40 bytes each.
MAX_REQUEST_MODE = 20 * REQUEST_MODE_LIMIT
# The deployment models every replica, and the clairvoyant reference every replica level: a
# peak past this (ServeGen's rates unscaled, a corrupt rate) would run for hours.
MAX_PEAK_REPLICAS = 2_000


class SimulationError(Exception):
    """Bad input discovered while preparing a simulation (the message says what and where)."""


@dataclass(frozen=True)
class SimSettings:
    max_concurrency: int = 16
    service: ServiceModel = field(default_factory=ServiceModel)
    provision_s: float = 180.0
    create_s: float = 600.0
    delete_s: float = 30.0
    slo_wait_s: float = 5.0
    queue_timeout_s: float | None = None
    bill_from_ready: bool = False
    seed: int = 0
    rate_scale: float = 1.0
    keep_cv: bool = False  # --keep-cv: do not thin the burstiness with the rate
    fill_gaps: bool = False  # --fill-gaps: interpolate rate-0 windows that have no cv
    mode: Mode = "auto"
    step_s: float = 1.0
    duration_s: float | None = None  # simulate only the first part of the trace
    replica_hourly_usd: float = 2.5  # every run of a simulation is billed at this one price
    initial_replicas: int | None = None  # None: sized for the opening load
    warmup_s: float = 300.0  # see RunSettings.warmup_s; 300 s fills HPA's default window

    def opening_s(self) -> float:
        """The opening size covers the peak until the first decision can take effect."""
        return self.warmup_s + self.provision_s

    def timing(self) -> DeploymentTiming:
        return DeploymentTiming(
            max_concurrency=self.max_concurrency,
            provision_s=self.provision_s,
            create_s=self.create_s,
            delete_s=self.delete_s,
            bill_from_ready=self.bill_from_ready,
        )

    def reference(self, starts: np.ndarray, replicas: np.ndarray, end_s: float) -> Reference:
        """The clairvoyant reference over the demand profile R(t), restarts billed as the
        simulated deployment bills them."""
        above, first = restart_costs(
            self.provision_s, self.create_s, self.delete_s, self.bill_from_ready
        )
        return clairvoyant(starts, replicas, end_s, above, first)


@dataclass
class Prepared:
    """A trace made ready for the engines; shared by every run so they see the same load."""

    mode: Literal["request", "aggregated"]
    bound_replica_seconds: float
    peak_replicas: int
    opening_replicas: int
    load: LoadSeries
    epoch_offset: float
    reference: Reference
    requests: RequestTrace | None = None
    service_s: np.ndarray | None = None
    step_arrivals: np.ndarray | None = None
    bins: ServiceBins | None = None
    info: dict[str, Any] = field(default_factory=dict)


def prepare(
    trace: RequestTrace | RateTrace, sizes: RequestTrace | None, settings: SimSettings
) -> Prepared:
    """The trace made ready for every controller: cut and scaled, its mode chosen, its bound
    and clairvoyant reference computed once."""
    rng = np.random.default_rng(settings.seed)
    mc = settings.max_concurrency
    trace, expected, filled = _shaped(trace, sizes, settings)
    mode = settings.mode
    if mode == "auto":
        mode = "request" if expected <= REQUEST_MODE_LIMIT else "aggregated"
    if mode == "request" and expected > MAX_REQUEST_MODE:
        raise SimulationError(
            f"{trace.source}: {expected:,.0f} requests are too many for --mode request (at most "
            f"{MAX_REQUEST_MODE:,}); use --mode auto or aggregated"
        )
    info: dict[str, Any] = {
        "trace": trace.source,
        "service_model": settings.service.label,
        "max_concurrency": mc,
        "expected_requests": round(expected),
    }
    if isinstance(trace, RateTrace):
        info["rate_scale"] = settings.rate_scale
        info["rate_cv"] = "as written" if settings.keep_cv else "thinned with the rate"
        info["gap_windows_filled"] = filled
    elif trace.out_of_order:
        info["rows_out_of_order"] = trace.out_of_order
    if mode == "request":
        return _prepare_requests(trace, sizes, settings, rng, info)
    return _prepare_aggregated(trace, sizes, settings, rng, info)


def _shaped(
    trace: RequestTrace | RateTrace, sizes: RequestTrace | None, settings: SimSettings
) -> tuple[RequestTrace | RateTrace, float, int]:
    """The trace as the options cut and scale it, its expected request count, and the gap
    windows filled (rate traces)."""
    filled = 0
    if isinstance(trace, RateTrace):
        if sizes is None:
            raise SimulationError(
                f"{trace.source} is a rate trace: give --sizes FILE (a request trace to draw "
                "token sizes from)"
            )
        if settings.fill_gaps:
            trace, filled = trace.filled_gaps()
        trace = trace.scaled(settings.rate_scale, thin=not settings.keep_cv)
        if settings.duration_s is not None:
            keep = trace.window_start_s < settings.duration_s
            trace = RateTrace(
                trace.window_start_s[keep],
                np.minimum(trace.window_s[keep], settings.duration_s - trace.window_start_s[keep]),
                trace.rate_rps[keep],
                trace.rate_cv[keep],
                trace.source,
            )
        expected = trace.expected_requests()
    else:
        if settings.rate_scale != 1.0:
            raise SimulationError("--rate-scale applies to rate traces only")
        if settings.duration_s is not None:
            count = int(np.searchsorted(trace.arrival_s, settings.duration_s, side="right"))
            trace = trace.head(max(count, 1))
        expected = float(len(trace))
    return trace, expected, filled


def _prepare_requests(
    trace: RequestTrace | RateTrace,
    sizes: RequestTrace | None,
    settings: SimSettings,
    rng: np.random.Generator,
    info: dict[str, Any],
) -> Prepared:
    """Request mode: every request simulated (drawn from the rates for a rate trace)."""
    mc = settings.max_concurrency
    requests = requests_from_rates(trace, sizes, rng) if isinstance(trace, RateTrace) else trace  # type: ignore[arg-type]
    if len(requests) == 0:
        raise SimulationError(f"{trace.source}: the trace produces no requests")
    service = settings.service.service_s(requests.input_tokens, requests.output_tokens)
    bound = request_bound(requests.arrival_s, service, mc, settings.opening_s())
    starts, needed = demand_profile(requests.arrival_s, service, mc)
    _check_peak(trace.source, int(needed.max(initial=0)), mc)
    reference = settings.reference(starts, needed, float(starts[-1]))
    load = request_load(requests.arrival_s, starts, needed, reference)
    return Prepared(
        "request",
        bound.replica_seconds,
        math.ceil(bound.peak_in_flight / mc),
        math.ceil(bound.opening_in_flight / mc),
        load,
        requests.epoch_offset,
        reference,
        requests=requests,
        service_s=service,
        info=info,
    )


def _prepare_aggregated(
    trace: RequestTrace | RateTrace,
    sizes: RequestTrace | None,
    settings: SimSettings,
    rng: np.random.Generator,
    info: dict[str, Any],
) -> Prepared:
    """Aggregated mode: arrivals per time step, service times as bins (the fluid model)."""
    mc = settings.max_concurrency
    step = settings.step_s
    if isinstance(trace, RateTrace):
        assert sizes is not None
        amounts = rate_step_arrivals(trace, step, rng)
        size_source = sizes
        offset = 0.0
    else:
        amounts = request_step_arrivals(trace, step)
        size_source = trace
        offset = trace.epoch_offset
    if amounts.sum() <= 0:
        raise SimulationError(f"{trace.source}: the trace produces no requests")
    bins = service_bins(
        settings.service.service_s(size_source.input_tokens, size_source.output_tokens), step
    )
    in_flight = fluid_in_flight(amounts, bins)
    needed = np.ceil(in_flight / mc - 1e-9).clip(0)
    _check_peak(trace.source, int(needed.max()), mc)
    opening = int(needed[: max(int(settings.opening_s() / step), 1)].max())
    info["step_s"] = step
    reference = settings.reference(np.arange(needed.size) * step, needed, needed.size * step)
    return Prepared(
        "aggregated",
        float(needed.sum() * step),
        int(needed.max()),
        opening,
        fluid_load(amounts, needed, step, reference),
        offset,
        reference,
        step_arrivals=amounts,
        bins=bins,
        info=info,
    )


def _check_peak(source: str, peak: int, mc: int) -> None:
    if peak > MAX_PEAK_REPLICAS:
        raise SimulationError(
            f"{source}: the load needs {peak:,} replicas at its peak ({mc} requests each); the "
            f"simulator models at most {MAX_PEAK_REPLICAS:,}: scale a rate trace down with "
            "--rate-scale, or give a replica more room with --max-concurrency"
        )


def run_one(
    controller: Controller,
    prepared: Prepared,
    settings: SimSettings,
    progress: Callable[[float], None] | None = None,
) -> RunResult:
    start = settings.initial_replicas
    if start is None:
        start = prepared.opening_replicas
    start = max(start, controller.min_replicas, 1)
    start = min(start, max(controller.max_replicas, 1))
    run_settings = RunSettings(
        settings.timing(), settings.queue_timeout_s, start, settings.warmup_s
    )
    if prepared.mode == "request":
        assert prepared.requests is not None and prepared.service_s is not None
        return run_requests(
            controller, prepared.requests.arrival_s, prepared.service_s, run_settings, progress
        )
    assert prepared.step_arrivals is not None and prepared.bins is not None
    return run_aggregated(
        controller, prepared.step_arrivals, settings.step_s, prepared.bins, run_settings, progress
    )


def _progress_bar(name: str) -> Callable[[float], None] | None:
    if not sys.stderr.isatty():
        return None

    def show(fraction: float) -> None:
        filled = int(fraction * 30)
        sys.stderr.write(f"\r{name[:24]:<24} [{'#' * filled}{'.' * (30 - filled)}] {fraction:4.0%}")
        sys.stderr.flush()

    return show


def _settings_record(prepared: Prepared, settings: SimSettings) -> dict[str, Any]:
    """The `settings` of summary.json: what the run was given and what it derived."""
    return {
        **prepared.info,
        "mode": prepared.mode,
        "provision_s": settings.provision_s,
        "create_s": settings.create_s,
        "delete_s": settings.delete_s,
        "slo_wait_s": settings.slo_wait_s,
        "queue_timeout_s": settings.queue_timeout_s,
        "bill_from_ready": settings.bill_from_ready,
        "seed": settings.seed,
        "warmup_s": settings.warmup_s,
        "bound_replica_seconds": round(prepared.bound_replica_seconds, 3),
        "clairvoyant_replica_seconds": round(prepared.reference.replica_seconds, 3),
        "replica_hourly_usd": settings.replica_hourly_usd,
        "peak_replicas": prepared.peak_replicas,
        "opening_replicas": prepared.opening_replicas,
    }


def simulate(
    controllers: Sequence[Controller],
    prepared: Prepared,
    settings: SimSettings,
    out: Path,
    plots: bool = True,
    title: str = "",
) -> dict[str, Any]:
    """Run every controller, write every output file, and return the summary mapping."""
    out.mkdir(parents=True, exist_ok=True)
    summaries: dict[str, Any] = {}
    results: list[RunResult] = []
    for controller in controllers:
        bar = _progress_bar(controller.name)
        result = run_one(controller, prepared, settings, bar)
        if bar is not None:
            bar(1.0)
            sys.stderr.write("\n")
        results.append(result)
        summaries[controller.name] = summarize(
            result,
            settings.slo_wait_s,
            prepared.bound_replica_seconds,
            settings.replica_hourly_usd,
            clairvoyant_replica_seconds=prepared.reference.replica_seconds,
        )
        if result.mode == "request":
            write_requests_csv(result, out / f"{controller.name}.requests.csv")
        write_timeline_csv(result, out / f"{controller.name}.timeline.csv")
        if plots:
            plot_run(result, prepared.load, settings.slo_wait_s, out / f"{controller.name}.png")
    document = {
        "settings": _settings_record(prepared, settings),
        "runs": summaries,
        "references": reference_summaries(
            prepared.bound_replica_seconds,
            prepared.reference.replica_seconds,
            prepared.reference.restarts,
            settings.replica_hourly_usd,
        ),
    }
    write_summary(document, out / "summary.json")
    if plots and len(results) > 1:
        plot_compare(results, prepared.load, title or "billed replicas", out / "compare.png")
    rows = {**summaries, **document["references"]}
    (out / "table.md").write_text(render_table(rows, markdown=True) + "\n")
    return document
