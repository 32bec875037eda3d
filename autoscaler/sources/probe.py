"""`autoscaler probe --policy FILE [--json] [--name POLICY]`: read every metric once.

Every metric source of the policy (or of every policy in the file) is built and read once,
all concurrently, and each result is printed with how long it took. A counter or histogram
source needs two scrapes for a rate; when the first read says so (`NeedsBaselineError`) the
probe waits `BASELINE_PAUSE` seconds and reads again, so the value is a rate over that pause.

Exit codes: 0 every read succeeded, 1 some read failed, 2 the policy file is invalid (its
validation errors are printed, one `FILE:LINE:COL: key.path: message` line each) or
`--name` names no policy in it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass

import anyio

from autoscaler.policy.model import Metric, Policy
from autoscaler.sources.base import Source, SourceError
from autoscaler.sources.common import NeedsBaselineError

BASELINE_PAUSE = 1.0  # seconds between the two scrapes a rate needs


@dataclass
class ProbeResult:
    name: str
    value: float | None
    error: str | None
    seconds: float
    note: str | None = None  # e.g. "rate over 1.0s"

    def as_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "value": self.value,
            "error": self.error,
            "seconds": round(self.seconds, 6),
        }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--policy", required=True, metavar="FILE", help="policy YAML file")
    parser.add_argument("--json", action="store_true", help="print a JSON list of results")
    parser.add_argument("--name", metavar="POLICY", help="only this policy of the file")


async def probe_metric(name: str, metric: Metric) -> ProbeResult:
    """Build the metric's source, read it once (twice for a rate), close it."""
    from autoscaler.sources.registry import build_source

    started = time.perf_counter()
    source: Source | None = None
    note = None
    try:
        source = build_source(metric.source, name=metric.name)
        try:
            value = await source.read()
        except NeedsBaselineError:
            await anyio.sleep(BASELINE_PAUSE)
            value = await source.read()
            note = f"rate over {BASELINE_PAUSE:g}s"
        return ProbeResult(name, value, None, time.perf_counter() - started, note)
    except SourceError as exc:
        return ProbeResult(name, None, str(exc), time.perf_counter() - started)
    finally:
        if source is not None:
            with anyio.CancelScope(shield=True):
                await source.aclose()


async def probe_policies(policies: list[Policy]) -> list[ProbeResult]:
    """Every metric of `policies`, read concurrently; results in policy/metric order."""
    jobs = [
        (f"{p.name}/{m.name}" if len(policies) > 1 else m.name, m)
        for p in policies
        for m in p.metrics
    ]
    results: list[ProbeResult | None] = [None] * len(jobs)

    async def one(index: int, name: str, metric: Metric) -> None:
        results[index] = await probe_metric(name, metric)

    async with anyio.create_task_group() as group:
        for index, (name, metric) in enumerate(jobs):
            group.start_soon(one, index, name, metric)
    return [r for r in results if r is not None]


def _format_table(results: list[ProbeResult]) -> str:
    width = max((len(r.name) for r in results), default=4)
    lines = []
    for r in results:
        if r.error is None:
            shown = f"{r.value:g}" + (f"  ({r.note})" if r.note else "")
        else:
            shown = f"ERROR {r.error}"
        lines.append(f"{r.name:<{width}}  {r.seconds:8.3f}s  {shown}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from autoscaler.policy.loader import ValidationFailed, load_policy_file

    try:
        policies = load_policy_file(args.policy)
    except ValidationFailed as exc:
        for error in exc.errors:
            print(error, file=sys.stderr)
        return 2
    if args.name is not None:
        chosen = [p for p in policies if p.name == args.name]
        if not chosen:
            have = ", ".join(p.name for p in policies) or "none"
            print(f"{args.policy}: no policy named {args.name!r} (have: {have})", file=sys.stderr)
            return 2
        policies = chosen
    results = anyio.run(probe_policies, policies)
    if args.json:
        print(json.dumps([r.as_json() for r in results], indent=2))
    else:
        print(_format_table(results))
    return 0 if all(r.error is None for r in results) else 1
