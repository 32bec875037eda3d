"""`autoscaler history POLICY [--since 1h]`: the decisions the daemon made, and the
observation each was made on, from its store (`GET /policies/{name}/history`).

The default output is JSONL of the observations, exactly what `autoscaler replay
--observations` reads, so "what would this new policy have done yesterday" is one pipe:

    autoscaler history chat --since 1d | autoscaler replay --policy new.yaml --observations -

`--decisions` prints each recorded decision (replay's output form, plus `executed`) instead,
and `--table` a readable table of both.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from autoscaler.core.timefmt import iso
from autoscaler.ctl.client import CtlError, add_target_arguments, get_any, resolve_target


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("policy", metavar="POLICY", help="policy name")
    parser.add_argument(
        "--since",
        metavar="WHEN",
        help="a duration back from now (1h, 30m, 1d) or an ISO 8601 time (default: all kept)",
    )
    parser.add_argument("--limit", type=int, metavar="N", help="only the newest N decisions")
    shape = parser.add_mutually_exclusive_group()
    shape.add_argument(
        "--decisions", action="store_true", help="print the decisions, one JSON per line"
    )
    shape.add_argument("--table", action="store_true", help="print a table for people")
    add_target_arguments(parser)


def format_rows(entries: list[dict[str, Any]]) -> list[str]:
    lines = [f"{'TIME':<20} {'STATUS':<12} {'REPLICAS':>8}  {'DECISION':<24} METRICS / REASONS"]
    for entry in entries:
        obs, dec = entry["observation"], entry["decision"]
        metrics = ", ".join(
            f"{k}={'failed' if v is None else format(v, 'g')}"
            for k, v in sorted((obs.get("metrics") or {}).items())
        )
        action = str(dec.get("action", "?"))
        if action != "none":
            action += f" -> {dec.get('replicas')}"
            if dec.get("executed") is False:
                action += " (not executed)"
        when = iso(float(entry["t"])) or "?"
        lines.append(
            f"{when[:19]:<20} {obs.get('status', '?'):<12} {obs.get('replicas', 0):>8}  "
            f"{action:<24} {metrics}"
        )
        lines.append(f"{'':<20} {', '.join(dec.get('reasons') or [])}: {dec.get('message', '')}")
    return lines


def run(args: argparse.Namespace) -> int:
    params = {}
    if args.since:
        params["since"] = args.since
    if args.limit is not None:  # the daemon refuses one below 1
        params["limit"] = str(args.limit)
    try:
        target = resolve_target(args)
        answer = get_any(target, f"/policies/{args.policy}/history", params)
    except CtlError as exc:
        print(f"autoscaler history: {exc}", file=sys.stderr)
        return 1
    entries = answer.get("entries") or []
    out = sys.stdout
    if args.table:
        for line in format_rows(entries):
            out.write(line + "\n")
    else:
        for entry in entries:
            line = entry["decision"] if args.decisions else entry["observation"]
            out.write(json.dumps(line, separators=(",", ":")) + "\n")
    out.flush()
    return 0
