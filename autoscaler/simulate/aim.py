"""The aim check across simulations: one row per trace, from the summary.json files.

For each simulation folder (or summary.json) given: the chosen policy's share of requests
within the wait target, its cost against the bound and the clairvoyant reference, the
cheapest built-in baseline meeting the attainment target, the policy's saving against `hpa`,
and how the hand-tuned `llm-chat` did (when it ran) for comparison.
The aim (issue 11): >= 99 % within the wait target, cheaper than every baseline that meets
it, and >= 20 % cheaper than hpa on the median trace.

Run: `python -m autoscaler.simulate.aim --policy llm-slo LABEL=DIR ...` (markdown on stdout).
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from autoscaler.simulate.baselines import BASELINES

TARGET = 0.99


def load(path: Path) -> dict[str, Any]:
    file = path / "summary.json" if path.is_dir() else path
    document: dict[str, Any] = json.loads(file.read_text())
    return document


def row(label: str, document: dict[str, Any], policy: str) -> dict[str, Any]:
    runs = document["runs"]
    mine = runs[policy]
    cost = mine["billed_replica_seconds"]
    meeting = {
        name: s["billed_replica_seconds"]
        for name, s in runs.items()
        if name in BASELINES and s["slo_attainment"] >= TARGET
    }
    cheapest = min(meeting, key=meeting.__getitem__) if meeting else None
    hpa = runs.get("hpa", {}).get("billed_replica_seconds")
    chat = runs.get("llm-chat")
    return {
        "chat": None
        if chat is None
        else (chat["slo_attainment"], chat["billed_replica_seconds"] / cost),
        "trace": label,
        "within": mine["slo_attainment"],
        "x_bound": mine.get("cost_ratio_to_bound"),
        "x_clairvoyant": mine.get("cost_ratio_to_clairvoyant"),
        "cheapest": cheapest,
        "cheapest_ratio": None if cheapest is None else meeting[cheapest] / cost,
        "saving_vs_hpa": None if not hpa else 1.0 - cost / hpa,
        "hpa_within": runs.get("hpa", {}).get("slo_attainment"),
        "meets": mine["slo_attainment"] >= TARGET,
        "cheapest_of_those_meeting": all(v >= cost for v in meeting.values()),
    }


def render(rows: Sequence[dict[str, Any]], policy: str) -> str:
    lines = [
        f"| trace | {policy} within | x bound | x clairvoyant | cheapest baseline meeting "
        "99 % (its cost / ours) | saving vs hpa (hpa within) | aim met | llm-chat within "
        "(its cost / ours) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        other = "none" if r["cheapest"] is None else f"{r['cheapest']} ({r['cheapest_ratio']:.3f})"
        saving = "-" if r["saving_vs_hpa"] is None else f"{100 * r['saving_vs_hpa']:+.1f} %"
        if r["hpa_within"] is not None:
            saving += f" ({100 * r['hpa_within']:.2f} %)"
        met = "yes" if r["meets"] and r["cheapest_of_those_meeting"] else "no"
        chat = "-" if r["chat"] is None else f"{100 * r['chat'][0]:.2f} % ({r['chat'][1]:.3f})"
        lines.append(
            f"| {r['trace']} | {100 * r['within']:.2f} % | {r['x_bound']:.3f} | "
            f"{r['x_clairvoyant']:.3f} | {other} | {saving} | {met} | {chat} |"
        )
    savings = [r["saving_vs_hpa"] for r in rows if r["saving_vs_hpa"] is not None]
    if savings:
        lines.append("")
        lines.append(
            f"Median saving against hpa over these {len(savings)} traces: "
            f"{100 * statistics.median(savings):+.1f} % (aim: at least +20 %)."
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autoscaler.simulate.aim")
    parser.add_argument("--policy", default="llm-slo", help="the run to check (llm-slo)")
    parser.add_argument("runs", nargs="+", metavar="LABEL=DIR", help="a simulation's output")
    args = parser.parse_args(argv)
    rows = []
    for item in args.runs:
        label, _, folder = item.partition("=")
        try:
            document = load(Path(folder))
        except (OSError, ValueError) as exc:  # a folder that is not a simulation's output
            parser.error(f"{item}: no readable summary.json ({exc})")
        if args.policy not in document.get("runs", {}):
            parser.error(f"{item}: no run named {args.policy!r} (see --policy)")
        rows.append(row(label, document, args.policy))
    print(render(rows, args.policy))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
