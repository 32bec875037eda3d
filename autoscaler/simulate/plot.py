"""PNG plots of simulation runs (matplotlib, Agg backend: no display needed).

`plot_run` draws one run: load, replicas and queueing delay over time. `plot_compare` draws
the replicas of several runs over the same load, with the bound's replica count and the
clairvoyant reference's (`reference.py`).
Series are bucketed to at most ~1000 points so two weeks plot as quickly as an hour; the load
series (`request_load`, `fluid_load`) are bucketed here once per simulation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from autoscaler.simulate.engine import RunResult
from autoscaler.simulate.reference import Reference


@dataclass(frozen=True, slots=True)
class LoadSeries:
    """Arrival rate (requests/s) per bucket and the references' replicas per bucket."""

    t_s: np.ndarray  # bucket starts
    rate_rps: np.ndarray
    ideal_replicas: np.ndarray  # the bound's replicas: time-weighted mean per bucket
    clairvoyant_replicas: np.ndarray  # the clairvoyant reference's, the same way


def _buckets(span: float) -> float:
    return max(span / 800.0, 10.0)


def request_load(
    arrival_s: np.ndarray, starts: np.ndarray, needed: np.ndarray, reference: Reference
) -> LoadSeries:
    span = float(arrival_s[-1]) if arrival_s.size else 1.0
    width = _buckets(span)
    edges = np.arange(0.0, span + width, width)
    counts = np.histogram(arrival_s, bins=np.append(edges, edges[-1] + width))[0]
    ideal = bucket_means(starts, needed.astype(np.float64), edges)
    return LoadSeries(edges, counts / width, ideal, ideal + _extra_means(reference, edges))


def _extra_means(reference: Reference, edges: np.ndarray) -> np.ndarray:
    """The clairvoyant plan's replicas beyond the bound's, as bucket means."""
    return bucket_means(reference.extra_times, reference.extra_values.astype(np.float64), edges)


def fluid_load(
    amounts: np.ndarray, needed: np.ndarray, step: float, reference: Reference
) -> LoadSeries:
    span = amounts.size * step
    per = max(int(_buckets(span) / step), 1)
    n = amounts.size // per
    if n == 0:
        return LoadSeries(np.zeros(1), np.array([amounts.sum() / step]), needed[:1], needed[:1])
    rate = amounts[: n * per].reshape(n, per).sum(axis=1) / (per * step)
    ideal = needed[: n * per].reshape(n, per).mean(axis=1)
    edges = np.arange(n) * per * step
    return LoadSeries(edges, rate, ideal, ideal + _extra_means(reference, edges))


def _time_scale(seconds: np.ndarray) -> tuple[float, str]:
    span = float(seconds.max()) if seconds.size else 0.0
    if span > 3 * 86400:
        return 86400.0, "time (days)"
    if span > 3 * 3600:
        return 3600.0, "time (hours)"
    return 60.0, "time (minutes)"


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _timeline_arrays(result: RunResult) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rows = np.asarray([(r[0], r[1], r[3]) for r in result.timeline], dtype=np.float64)
    return rows[:, 0], rows[:, 1], rows[:, 2]


def bucket_means(times: np.ndarray, values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Time-weighted means per bucket of a step function (value i holds from times[i])."""
    if starts.size == 0 or times.size == 0:
        return np.zeros(starts.size)
    width = float(starts[1] - starts[0]) if starts.size > 1 else 1.0
    integral = np.concatenate([[0.0], np.cumsum(values[:-1] * np.diff(times))])
    edges = np.append(starts, starts[-1] + width)
    at_edges = np.interp(edges, times, integral)
    return np.diff(at_edges) / width


def _delay(result: RunResult, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray, str]:
    """Per bucket: the worst wait of requests arriving in it (request mode) or the oldest
    queued work at each evaluation (aggregated)."""
    if result.arrival_s is not None and result.start_s is not None:
        waits = result.start_s - result.arrival_s
        waits = np.where(np.isnan(waits), np.nan, waits)
        idx = np.clip(np.searchsorted(edges, result.arrival_s, side="right") - 1, 0, None)
        worst = np.full(edges.size, 0.0)
        ok = ~np.isnan(waits)
        np.maximum.at(worst, idx[ok], waits[ok])
        return edges, worst, "max wait of arrivals (s)"
    series = np.asarray(result.delay_series or [(0.0, 0.0)], dtype=np.float64)
    idx = np.clip(np.searchsorted(edges, series[:, 0], side="right") - 1, 0, None)
    worst = np.zeros(edges.size)
    np.maximum.at(worst, idx, series[:, 1])
    return edges, worst, "oldest queued work (s)"


def _plot_references(ax: Any, x: np.ndarray, load: LoadSeries, lw: float) -> None:
    ax.step(x, load.ideal_replicas, where="post", lw=lw, color="black", label="bound")
    ax.step(
        x, load.clairvoyant_replicas, where="post", lw=lw, color="grey", ls=":", label="clairvoyant"
    )


def plot_run(result: RunResult, load: LoadSeries, slo_wait_s: float, path: Path) -> None:
    plt = _pyplot()
    fig, (ax_load, ax_rep, ax_wait) = plt.subplots(3, 1, figsize=(11, 8), sharex=True)
    scale, label = _time_scale(load.t_s)
    x = load.t_s / scale
    ax_load.plot(x, load.rate_rps, lw=0.8, color="tab:blue")
    ax_load.set_ylabel("arrivals (req/s)")
    ax_load.set_title(f"{result.name} ({result.mode} mode)")
    t, ready, billed = _timeline_arrays(result)
    ax_rep.step(
        x, bucket_means(t, billed, load.t_s), where="post", lw=0.9, color="tab:red", label="billed"
    )
    ax_rep.step(
        x, bucket_means(t, ready, load.t_s), where="post", lw=0.9, color="tab:green", label="ready"
    )
    _plot_references(ax_rep, x, load, 0.7)
    ax_rep.set_ylabel("replicas (bucket mean)")
    ax_rep.legend(loc="upper right", fontsize=8)
    _edges, worst, wait_label = _delay(result, load.t_s)
    ax_wait.plot(x, worst, lw=0.8, color="tab:purple")
    ax_wait.axhline(slo_wait_s, color="black", lw=0.6, ls="--", label=f"SLO {slo_wait_s:g} s")
    ax_wait.set_ylabel(wait_label)
    ax_wait.set_xlabel(label)
    ax_wait.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_compare(results: Sequence[RunResult], load: LoadSeries, title: str, path: Path) -> None:
    plt = _pyplot()
    fig, (ax_load, ax_rep) = plt.subplots(
        2, 1, figsize=(11, 6.5), sharex=True, gridspec_kw={"height_ratios": [1, 2]}
    )
    scale, label = _time_scale(load.t_s)
    x = load.t_s / scale
    ax_load.plot(x, load.rate_rps, lw=0.8, color="tab:blue")
    ax_load.set_ylabel("arrivals (req/s)")
    ax_load.set_title(title)
    _plot_references(ax_rep, x, load, 1.2)
    for result in results:
        t, _ready, billed = _timeline_arrays(result)
        ax_rep.step(x, bucket_means(t, billed, load.t_s), where="post", lw=0.8, label=result.name)
    # A baseline that overshoots by 20x would flatten the rest: clip the axis near the bound.
    top = float(np.percentile(load.ideal_replicas, 99.5)) if load.ideal_replicas.size else 1.0
    ax_rep.set_ylim(0, max(top * 2.0, 4.0))
    ax_rep.set_ylabel("billed replicas (bucket mean)")
    ax_rep.set_xlabel(label)
    ax_rep.legend(loc="upper right", fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
