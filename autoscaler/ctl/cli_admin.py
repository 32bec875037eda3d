"""`autoscaler pause|resume|override|cancel-override POLICY`: the admin API, from the shell.

    autoscaler pause chat --url http://a:9464 --url http://b:9464
    autoscaler override chat --replicas 4 --for 30m
    autoscaler cancel-override chat

Each goes to the leader (`client.admin`); prints one line saying what changed and where.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, NoReturn

from autoscaler.ctl.client import CtlError, add_target_arguments, admin, resolve_target
from autoscaler.policy.errors import quote
from autoscaler.runtime.admin_requests import MAX_OVERRIDE_SECONDS, parse_duration

FOR_FORM = "a positive duration up to 365d like 30m, 1h30m or 90s (a bare number is seconds)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("policy", metavar="POLICY", help="policy name")
    if parser.prog.split()[-1] == "override":
        parser.add_argument(
            "--replicas", type=int, required=True, help="replica count to hold (>= 1)"
        )
        parser.add_argument(
            "--for",
            dest="duration",
            required=True,
            metavar="DURATION",
            type=override_duration,
            help=f"how long to hold it: {FOR_FORM}",
        )
        explain_missing_for(parser)
    add_target_arguments(parser, admin=True)


def override_duration(text: str) -> str:
    """`--for`, checked here as the daemon checks it (`admin_requests.parse_duration`), so a
    wrong one is a usage error (exit 2) naming the flag; sent as given."""
    try:
        parse_duration(text, longest=MAX_OVERRIDE_SECONDS)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{quote(text, 40)} is not {FOR_FORM}") from None
    return text


def explain_missing_for(parser: argparse.ArgumentParser) -> None:
    """argparse reads a value starting with '-' (`--for -5m`) as an option and reports only
    "expected one argument": say what --for takes instead."""
    error = parser.error

    def explained(message: str) -> NoReturn:
        if message == "argument --for: expected one argument":
            message = (
                f"argument --for: expected {FOR_FORM}; a value starting with '-' is read as "
                "an option, and a negative duration is refused anyway"
            )
        error(message)

    setattr(parser, "error", explained)  # noqa: B010 (mypy refuses assigning to a method)


def request_for(args: argparse.Namespace) -> tuple[str, str, dict[str, Any] | None]:
    policy = args.policy
    if args.command == "override":
        body = {"replicas": args.replicas, "duration": args.duration}
        return "POST", f"/policies/{policy}/override", body
    return "POST", f"/policies/{policy}/{args.command}", None


def describe(command: str, policy: str, url: str, answer: dict[str, Any]) -> str:
    override = answer.get("override")
    if command == "override" and isinstance(override, dict):
        what = f"held at {override.get('replicas')} until {override.get('until')}"
    elif command == "cancel-override":
        what = "override cancelled"
    elif command == "pause":
        what = "paused"
    else:
        what = "resumed"
    return f"{policy}: {what} (by {url})"


def run(args: argparse.Namespace) -> int:
    method, path, body = request_for(args)
    try:
        target = resolve_target(args, admin=True)
        url, answer = admin(target, method, path, body)
    except CtlError as exc:
        print(f"autoscaler {args.command}: {exc}", file=sys.stderr)
        return 1
    print(describe(args.command, args.policy, url, answer))
    return 0
