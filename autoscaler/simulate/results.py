"""Turning runs into results: the summary figures, the CSV files and the side-by-side table.

Wait percentiles are over requests that started (a dropped request has no wait);
`slo_attainment` is over all requests, so a dropped request counts as a miss. Every run of one
simulation is billed at the same price (`--replica-hourly-usd`), whatever a policy's own
`cost.replica_hourly_usd` says (that price only feeds the policy's cost cap in the core), so
the `cost $` column compares like with like. The two references (the fluid bound and the
clairvoyant plan) are rows of the table too, and a `references` block of summary.json.
"""

from __future__ import annotations

import csv
import itertools
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from autoscaler.simulate.engine import RunResult
from autoscaler.simulate.signals import weighted_quantile


def timeline_integral(timeline: Sequence[tuple[float, int, int, int, float, float]]) -> float:
    """Replica-seconds billed, from the timeline's step function (billed holds until the next
    row)."""
    total = 0.0
    for (t0, _r, _p, billed, _w, _run), (t1, *_rest) in itertools.pairwise(timeline):
        total += billed * (t1 - t0)
    return total


def seconds_at_zero(timeline: Sequence[tuple[float, int, int, int, float, float]]) -> float:
    total = 0.0
    for (t0, _r, _p, billed, _w, _run), (t1, *_rest) in itertools.pairwise(timeline):
        if billed == 0:
            total += t1 - t0
    return total


def summarize(
    result: RunResult,
    slo_wait_s: float,
    bound_replica_seconds: float,
    hourly_usd: float,
    extra: dict[str, Any] | None = None,
    clairvoyant_replica_seconds: float | None = None,
) -> dict[str, Any]:
    values, weights = result.wait_values, result.wait_weights
    within = values <= slo_wait_s + 1e-9
    met = float(within.sum()) if weights is None else float(weights[within].sum())
    hourly = hourly_usd
    billed = result.billed_replica_seconds
    summary: dict[str, Any] = {
        "mode": result.mode,
        "billed_replica_seconds": round(billed, 3),
        "cost_usd": None if hourly is None else round(billed / 3600.0 * hourly, 4),
        "replica_hourly_usd": hourly,
        "requests_total": _count(result.requests_total),
        "requests_served": _count(result.requests_served),
        "requests_dropped": _count(result.requests_dropped),
        "wait_p50_s": _round(weighted_quantile(values, weights, 0.50)),
        "wait_p90_s": _round(weighted_quantile(values, weights, 0.90)),
        "wait_p99_s": _round(weighted_quantile(values, weights, 0.99)),
        "wait_max_s": _round(_max_wait(values, weights)),
        "slo_wait_s": slo_wait_s,
        "slo_attainment": round(met / result.requests_total, 6) if result.requests_total else 1.0,
        "scale_actions": dict(sorted(result.scale_actions.items())),
        "seconds_at_zero": round(seconds_at_zero(result.timeline), 3),
        "bound_replica_seconds": round(bound_replica_seconds, 3),
        "cost_ratio_to_bound": _ratio(billed, bound_replica_seconds),
        "cost_ratio_to_clairvoyant": _ratio(billed, clairvoyant_replica_seconds),
        "evaluations": result.evaluations,
        "end_s": round(result.end_s, 3),
    }
    if extra:
        summary.update(extra)
    return summary


def _ratio(billed: float, reference: float | None) -> float | None:
    return round(billed / reference, 4) if reference else None


def reference_summaries(
    bound_replica_seconds: float,
    clairvoyant_replica_seconds: float,
    restarts: int,
    hourly_usd: float,
) -> dict[str, Any]:
    """The two references as table rows: nothing waits, nothing is dropped."""
    out: dict[str, Any] = {}
    for name, seconds in (
        ("bound", bound_replica_seconds),
        ("clairvoyant", clairvoyant_replica_seconds),
    ):
        out[name] = {
            "mode": "reference",
            "billed_replica_seconds": round(seconds, 3),
            "cost_usd": round(seconds / 3600.0 * hourly_usd, 4),
            "replica_hourly_usd": hourly_usd,
            "slo_attainment": 1.0,
            "wait_p50_s": 0.0,
            "wait_p99_s": 0.0,
            "wait_max_s": 0.0,
            "requests_dropped": 0,
            "cost_ratio_to_bound": _ratio(seconds, bound_replica_seconds),
            "cost_ratio_to_clairvoyant": _ratio(seconds, clairvoyant_replica_seconds),
        }
    out["clairvoyant"]["restarts"] = restarts
    return out


def _max_wait(values: np.ndarray, weights: np.ndarray | None) -> float:
    """The longest wait of a whole request: aggregated amounts below a millionth of a request
    are rounding, not requests."""
    if weights is not None:
        values = values[weights >= 1e-6]
    return float(values.max()) if values.size else math.nan


def _count(value: float) -> int | float:
    return round(value) if abs(value - round(value)) < 1e-6 else round(value, 3)


def _round(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 4)


def write_requests_csv(result: RunResult, path: Path) -> None:
    assert result.arrival_s is not None and result.start_s is not None
    assert result.end_s_each is not None and result.replica is not None
    with path.open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["arrival_s", "start_s", "end_s", "replica"])
        for arrival, start, end, replica in zip(
            result.arrival_s.tolist(),
            result.start_s.tolist(),
            result.end_s_each.tolist(),
            result.replica.tolist(),
            strict=True,
        ):
            if replica < 0:
                out.writerow([f"{arrival:.6f}", "", "", ""])
            else:
                out.writerow([f"{arrival:.6f}", f"{start:.6f}", f"{end:.6f}", replica])


def write_timeline_csv(result: RunResult, path: Path) -> None:
    with path.open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["t_s", "ready", "provisioning", "billed", "waiting", "running"])
        for t, ready, provisioning, billed, waiting, running in result.timeline:
            out.writerow([f"{t:.6f}", ready, provisioning, billed, _num(waiting), _num(running)])


def _num(value: float) -> str:
    return str(int(value)) if value == int(value) else f"{value:.3f}"


def write_summary(summaries: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(summaries, indent=2, sort_keys=False) + "\n")


TABLE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("name", "run"),
    ("mode", "mode"),
    ("billed_replica_seconds", "replica-h"),
    ("cost_ratio_to_bound", "x bound"),
    ("cost_ratio_to_clairvoyant", "x clairvoyant"),
    ("cost_usd", "cost $"),
    ("slo_attainment", "within SLO"),
    ("wait_p50_s", "wait p50 s"),
    ("wait_p99_s", "wait p99 s"),
    ("wait_max_s", "wait max s"),
    ("requests_dropped", "dropped"),
    ("actions", "actions"),
)


def table_rows(runs: dict[str, Any]) -> list[list[str]]:
    rows = []
    for name, s in runs.items():
        if not isinstance(s, dict) or "billed_replica_seconds" not in s:
            continue
        actions = s.get("scale_actions", {})
        row = {
            "name": name,
            "mode": s["mode"],
            "billed_replica_seconds": f"{s['billed_replica_seconds'] / 3600:.1f}",
            "cost_ratio_to_bound": _fmt(s.get("cost_ratio_to_bound"), "{:.3f}"),
            "cost_ratio_to_clairvoyant": _fmt(s.get("cost_ratio_to_clairvoyant"), "{:.3f}"),
            "cost_usd": _fmt(s.get("cost_usd"), "{:.0f}"),
            "slo_attainment": f"{100 * s['slo_attainment']:.2f}%",
            "wait_p50_s": _fmt(s.get("wait_p50_s"), "{:.1f}"),
            "wait_p99_s": _fmt(s.get("wait_p99_s"), "{:.1f}"),
            "wait_max_s": _fmt(s.get("wait_max_s"), "{:.0f}"),
            "requests_dropped": str(s["requests_dropped"]),
            "actions": str(sum(actions.values())) if "scale_actions" in s else "-",
        }
        rows.append([row[key] for key, _ in TABLE_COLUMNS])
    return rows


def _fmt(value: Any, pattern: str) -> str:
    return "-" if value is None else pattern.format(value)


def render_table(runs: dict[str, Any], markdown: bool = False) -> str:
    headers = [title for _, title in TABLE_COLUMNS]
    rows = table_rows(runs)
    if markdown:
        lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    out = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(out)
