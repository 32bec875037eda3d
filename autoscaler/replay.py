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
`FILE:LINE: what is wrong` on stderr and exit 1 (an invalid policy: its errors, exit 1); no
input makes it print a traceback. Lines are decoded strictly (`sources.jsondoc`: duplicate
keys, nesting deeper than 64 levels and integers of more than 100 digits are bad lines), a
line is at most `MAX_LINE` bytes, `t` lies in [0, `T_MAX`] (epoch seconds before year 3000:
schedules turn `t` into dates) and counts are at most `MAX_COUNT`. The observations file must
be a regular file (or `-` for standard input); a FIFO or device is refused, never waited on.

Only parsing and printing live here; every decision is `autoscaler.core.decide`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO, TextIO

from autoscaler.core import Decision, Observation, decide, initial_state
from autoscaler.core.types import STATUSES, DeploymentState, Status
from autoscaler.policy.model import Policy
from autoscaler.sources import jsondoc
from autoscaler.textcut import cut

OBSERVATION_KEYS = ("t", "replicas", "status", "metrics", "ready_replicas", "startup_seconds")
MAX_LINE = 1024 * 1024  # bytes; an observation is ~100
T_MAX = 32_503_680_000.0  # 3000-01-01T00:00:00Z; dates past year 9999 do not exist
MAX_COUNT = 1_000_000  # replicas; far above any deployment, as the core's recommendation cap


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


def _shown(value: object) -> str:
    return cut(json.dumps(value), 60)


def _number(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadLine(f"{what} must be a number, got {_shown(value)}")
    try:
        number = float(value)
    except OverflowError:
        raise BadLine(f"{what} must be finite, got a number beyond float range") from None
    if not math.isfinite(number):
        raise BadLine(f"{what} must be finite, got {number}")
    return number


def _count(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_COUNT:
        raise BadLine(f"{what} must be an integer >= 0 and <= {MAX_COUNT}, got {_shown(value)}")
    return value


def _time(value: object) -> float:
    t = _number(value, "'t'")
    if not 0.0 <= t <= T_MAX:
        raise BadLine(
            f"'t' must be epoch seconds from 0 to {T_MAX:.0f} (before year 3000), got {t:g}"
        )
    return t


def parse_observation(line: str | bytes) -> tuple[float, Observation]:
    """One JSONL line -> (t, Observation); BadLine names the problem."""
    if isinstance(line, bytes):
        try:
            line = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadLine(f"not UTF-8 text: {exc.reason} at byte {exc.start + 1}") from None
    try:  # without its line end, where JSON breaks off is a column of this line
        raw: Any = jsondoc.loads(line.rstrip("\r\n"))
    except jsondoc.JsonDocError as exc:
        raise BadLine(str(exc)) from None
    if not isinstance(raw, dict):
        raise BadLine(f"expected a JSON object, got {type(raw).__name__}")
    unknown = sorted(set(raw) - set(OBSERVATION_KEYS))
    if unknown:
        raise BadLine(f"unknown key {unknown[0]!r}; allowed keys: {', '.join(OBSERVATION_KEYS)}")
    if "t" not in raw:
        raise BadLine("missing key 't' (seconds)")
    t = _time(raw["t"])
    status = raw.get("status")
    if not isinstance(status, str) or status not in STATUSES:
        raise BadLine(f"'status' must be one of {', '.join(STATUSES)}, got {_shown(status)}")
    if "replicas" in raw:
        replicas = _count(raw["replicas"], "'replicas'")
    elif status == "absent":
        replicas = 0
    else:
        raise BadLine("missing key 'replicas'")
    metrics_raw = raw.get("metrics", {})
    if not isinstance(metrics_raw, dict):
        raise BadLine(
            f"'metrics' must be an object of name: number|null, got {_shown(metrics_raw)}"
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
    return t, Observation(
        DeploymentState(status_value, replicas, ready_replicas), metrics, startup_seconds=startup
    )


def replay(policy: Policy, lines: Iterable[str | bytes]) -> Iterator[tuple[int, float, Decision]]:
    """Decisions for each observation line, as (line number, t, decision).

    Raises BadLine (with `.lineno` set) at the first line that cannot be replayed.
    """
    state = initial_state(policy)
    last_t: float | None = None
    for lineno, line in enumerate(lines, start=1):
        try:
            if len(line) > MAX_LINE:
                raise BadLine(f"line longer than {MAX_LINE} bytes")
            if not line.strip():
                continue
            t, observation = parse_observation(line)
            if last_t is not None and t < last_t:
                raise BadLine(f"'t' goes backwards: {t:g} after {last_t:g}")
            try:
                decision, state = decide(policy, state, observation, t)
            except (ArithmeticError, ValueError) as exc:  # a bound missed above; never a trace
                raise BadLine(f"cannot decide on this line: {type(exc).__name__}: {exc}") from None
        except BadLine as exc:
            exc.lineno = lineno
            raise
        last_t = t
        yield lineno, t, decision


def read_lines(stream: BinaryIO) -> Iterator[bytes]:
    """The lines of `stream`, each cut at `MAX_LINE` + 1 bytes (`replay` refuses those), so
    a line without end (`/dev/zero` on standard input) never fills memory."""
    while True:
        line = stream.readline(MAX_LINE + 1)
        if not line:
            return
        yield line
        if len(line) > MAX_LINE:
            return


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


def _say(err: TextIO, line: str) -> None:
    """One error line; text that cannot be encoded (a lone surrogate from a `\\ud800` escape
    in the input) is shown escaped instead of failing the print."""
    print(line.encode("utf-8", "backslashreplace").decode("utf-8"), file=err)


def run(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    from autoscaler.policy.errors import ValidationFailed
    from autoscaler.policy.loader import FileRefused, load_policy_file, open_regular

    out = out or sys.stdout
    err = err or sys.stderr
    try:
        policies = load_policy_file(args.policy)
    except ValidationFailed as exc:
        for error in exc.errors:
            _say(err, str(error))
        return 1
    try:
        policy = choose_policy(policies, args.name)
    except LookupError as exc:
        _say(err, f"{args.policy}: {exc.args[0]}")
        return 1
    source = args.observations
    stream: BinaryIO
    try:
        stream = sys.stdin.buffer if source == "-" else os.fdopen(open_regular(source), "rb")
    except FileRefused as exc:
        _say(err, f"{source}: {exc}")
        return 1
    try:
        for _lineno, t, decision in replay(policy, read_lines(stream)):
            out.write(json.dumps(decision.to_json(t)) + "\n")
    except BadLine as exc:
        _say(err, f"{source}:{exc.lineno}: {exc}")
        return 1
    except BrokenPipeError:
        raise  # the reader went away: `cli.main` ends quietly
    except OSError as exc:
        _say(err, f"{source}: cannot read: {exc.strerror or exc}")
        return 1
    finally:
        if source != "-":
            stream.close()
    out.flush()
    return 0
