"""`autoscaler replay`: run the decision core over recorded observations.

    autoscaler replay --policy FILE --observations FILE.jsonl [--name POLICY]

Each input line is one observation,
`{"t": 30.0, "replicas": 3, "status": "ready", "metrics": {"waiting": 12.0, "kv": null}}`
(`t` in seconds, taken as epoch seconds; a metric that is null or missing failed to read;
optional `ready_replicas`, and `startup_seconds`: a start-up time the daemon measured just
before this observation, which a policy's objective learns from). Each output line is the
decision for it,
`{"t": 30.0, "action": "scale", "replicas": 5, "reasons": [...], "message": "..."}`.
The core's state carries from line to line and each next observation is the truth about the
deployment (whatever the previous decision asked for). A bad line stops the replay with
`FILE:LINE: what is wrong` on stderr and exit 1.

Only parsing and printing live here; every decision is `autoscaler.core.decide`.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

from autoscaler.core import Decision, Observation, decide, initial_state
from autoscaler.core.types import STATUSES, Status
from autoscaler.policy.model import Policy

OBSERVATION_KEYS = ("t", "replicas", "status", "metrics", "ready_replicas", "startup_seconds")


class BadLine(ValueError):
    """An observation line that cannot be replayed; the message says what is wrong."""

    lineno: int = 0  # set by `replay` to the 1-based line number


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--policy", required=True, metavar="FILE", help="policy YAML file")
    parser.add_argument(
        "--observations",
        required=True,
        metavar="FILE.jsonl",
        help="one JSON observation per line ('-' reads standard input)",
    )
    parser.add_argument(
        "--name", metavar="POLICY", help="which policy to use when FILE holds several"
    )


def _number(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadLine(f"{what} must be a number, got {json.dumps(value)}")
    if not math.isfinite(value):
        raise BadLine(f"{what} must be finite, got {value}")
    return float(value)


def _count(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BadLine(f"{what} must be an integer >= 0, got {json.dumps(value)}")
    return value


def parse_observation(line: str) -> tuple[float, Observation]:
    """One JSONL line -> (t, Observation); BadLine names the problem."""
    try:
        raw: Any = json.loads(line)
    except json.JSONDecodeError as exc:
        raise BadLine(f"not valid JSON: {exc.msg} at column {exc.colno}") from None
    if not isinstance(raw, dict):
        raise BadLine(f"expected a JSON object, got {type(raw).__name__}")
    unknown = sorted(set(raw) - set(OBSERVATION_KEYS))
    if unknown:
        raise BadLine(f"unknown key {unknown[0]!r}; allowed keys: {', '.join(OBSERVATION_KEYS)}")
    if "t" not in raw:
        raise BadLine("missing key 't' (seconds)")
    t = _number(raw["t"], "'t'")
    status = raw.get("status")
    if status not in STATUSES:
        raise BadLine(f"'status' must be one of {', '.join(STATUSES)}, got {json.dumps(status)}")
    if "replicas" in raw:
        replicas = _count(raw["replicas"], "'replicas'")
    elif status == "absent":
        replicas = 0
    else:
        raise BadLine("missing key 'replicas'")
    metrics_raw = raw.get("metrics", {})
    if not isinstance(metrics_raw, dict):
        raise BadLine(
            f"'metrics' must be an object of name: number|null, got {json.dumps(metrics_raw)}"
        )
    metrics: dict[str, float | None] = {}
    for name, value in metrics_raw.items():
        metrics[name] = None if value is None else _number(value, f"metrics.{name}")
    ready = raw.get("ready_replicas")
    ready_replicas = None if ready is None else _count(ready, "'ready_replicas'")
    startup_raw = raw.get("startup_seconds")
    startup = None
    if startup_raw is not None:
        startup = _number(startup_raw, "'startup_seconds'")
        if startup < 0:
            raise BadLine(f"'startup_seconds' must be >= 0, got {startup:g}")
    status_value: Status = status
    return t, Observation(status_value, replicas, metrics, ready_replicas, startup)


def replay(policy: Policy, lines: Iterable[str]) -> Iterator[tuple[int, float, Decision]]:
    """Decisions for each observation line, as (line number, t, decision).

    Raises BadLine (with `.lineno` set) at the first line that cannot be replayed.
    """
    state = initial_state(policy)
    last_t: float | None = None
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            t, observation = parse_observation(line)
            if last_t is not None and t < last_t:
                raise BadLine(f"'t' goes backwards: {t:g} after {last_t:g}")
        except BadLine as exc:
            exc.lineno = lineno
            raise
        last_t = t
        decision, state = decide(policy, state, observation, t)
        yield lineno, t, decision


def choose_policy(policies: list[Policy], name: str | None) -> Policy:
    names = [p.name for p in policies]
    if name is not None:
        for policy in policies:
            if policy.name == name:
                return policy
        raise LookupError(f"no policy named {name!r}; the file holds: {', '.join(names)}")
    if len(policies) == 1:
        return policies[0]
    if not policies:
        raise LookupError("the file holds no policy")
    raise LookupError(
        f"the file holds {len(policies)} policies ({', '.join(names)}): choose one with --name"
    )


def run(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    from autoscaler.policy.errors import ValidationFailed
    from autoscaler.policy.loader import load_policy_file

    out = out or sys.stdout
    err = err or sys.stderr
    try:
        policies = load_policy_file(args.policy)
    except ValidationFailed as exc:
        for error in exc.errors:
            print(error, file=err)
        return 1
    try:
        policy = choose_policy(policies, args.name)
    except LookupError as exc:
        print(f"{args.policy}: {exc.args[0]}", file=err)
        return 1
    source = args.observations
    try:
        stream = sys.stdin if source == "-" else open(source, encoding="utf-8")  # noqa: SIM115
    except OSError as exc:
        print(f"{source}: cannot read: {exc.strerror or exc}", file=err)
        return 1
    try:
        for _lineno, t, decision in replay(policy, stream):
            out.write(json.dumps(decision.to_json(t)) + "\n")
    except BadLine as exc:
        print(f"{source}:{exc.lineno}: {exc}", file=err)
        return 1
    except UnicodeDecodeError as exc:
        print(f"{source}: not UTF-8 text: {exc.reason}", file=err)
        return 1
    finally:
        if stream is not sys.stdin:
            stream.close()
    out.flush()
    return 0
