"""`autoscaler status [--watch] [--json]`: what running daemons are doing.

Asks every daemon given (`--url` may repeat) for `/status`, shows each one's role (leader or
standby, its epoch) and the policies as the leader (else the first answering daemon) sees
them: deployment, replicas current/ready/desired, the last decision with its reasons and
message, pauses and overrides. `--watch` redraws every `--interval` until Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from autoscaler.ctl.client import CtlError, Target, add_target_arguments, get_json, resolve_target


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_target_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print the /status JSON instead")
    parser.add_argument("--watch", action="store_true", help="redraw until Ctrl-C")
    parser.add_argument(
        "--interval",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="seconds between redraws with --watch (default: 2)",
    )


def collect(target: Target) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """(every daemon's url/role/epoch or error, the status to show: the leader's)."""
    daemons: list[dict[str, Any]] = []
    shown: dict[str, Any] | None = None
    for url in target.urls:
        try:
            status = get_json(url, "/status")
        except CtlError as exc:
            daemons.append({"url": url, "role": None, "error": str(exc).split(": ", 1)[-1]})
            continue
        daemons.append({"url": url, "role": status.get("role"), "epoch": status.get("epoch")})
        if shown is None or (status.get("role") == "leader" and shown.get("role") != "leader"):
            shown = status
    return daemons, shown


def render(target: Target, as_json: bool, width: int) -> tuple[str, bool]:
    from autoscaler.ctl.table import format_status

    daemons, status = collect(target)
    if as_json:
        body = {"daemons": daemons, "status": status}
        return json.dumps(body, indent=2) + "\n", status is not None
    return "\n".join(format_status(daemons, status, width)) + "\n", status is not None


def run(args: argparse.Namespace) -> int:
    import shutil

    try:
        target = resolve_target(args)
    except CtlError as exc:
        print(f"autoscaler status: {exc}", file=sys.stderr)
        return 1
    tty = sys.stdout.isatty()
    width = shutil.get_terminal_size((160, 40)).columns if tty else 200
    if not args.watch:
        text, ok = render(target, args.json, width)
        sys.stdout.write(text)
        return 0 if ok else 1
    drawn = 0
    while True:
        text, _ok = render(target, args.json, width)
        if tty:
            # Back to the start of the previous frame and clear it (as the demo's view does).
            sys.stdout.write((f"\x1b[{drawn}F\x1b[J" if drawn else "") + text)
            drawn = text.count("\n")
        else:
            sys.stdout.write(text + "\n")
        sys.stdout.flush()
        time.sleep(max(0.2, args.interval))
