"""The options of `autoscaler simulate`, in the groups `--help` shows (what to simulate, the
service model, deployment timing and SLO, signals and rate traces, cost, request trace
columns, the run). Their checks are `cli.py`'s."""

from __future__ import annotations

import argparse
from pathlib import Path

from autoscaler.simulate.baselines import BASELINES
from autoscaler.simulate.signals import SIGNALS
from autoscaler.simulate.trace_rows import parse_where
from autoscaler.simulate.traces import TIME_UNITS

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
    p.add_argument(
        "--trace",
        required=True,
        metavar="FILE",
        help="request or rate trace (CSV, or JSON Lines with one object per request)",
    )
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
    p.add_argument("--time-unit", choices=TIME_UNITS, help="arrival times as iso, s, ms, us or ns")
    p.add_argument(
        "--where",
        action="append",
        default=[],
        type=parse_where,
        metavar="COLUMN=VALUE",
        help="request trace: replay only the rows whose COLUMN holds VALUE (repeatable: all "
        "must hold), e.g. --where Model=ChatGPT on BurstGPT",
    )


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
