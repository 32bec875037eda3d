"""The `autoscaler` command: one subcommand per module, imported only when used.

Each subcommand module exposes `add_arguments(parser)` and `run(args) -> int` (the exit code).
Keeping the table here (and the work in the modules) keeps start-up fast and each command's
code beside the layer it belongs to.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "validate": ("autoscaler.policy.cli_validate", "validate policy files or folders"),
    "schema": ("autoscaler.policy.cli_schema", "print the JSON Schema of a policy"),
    "replay": ("autoscaler.replay", "run the decision core over recorded observations"),
    "probe": ("autoscaler.sources.probe", "read every metric source of a policy once"),
    "sim-provider": ("autoscaler.fakecloud.cli", "serve a provider simulator"),
    "simulate": ("autoscaler.simulate.cli", "replay request traces against policies"),
    "run": ("autoscaler.runtime.cli_run", "run the daemon"),
    "demo": ("autoscaler.demo.cli", "run the daemon on the embedded default"),
    "status": ("autoscaler.ctl.cli_status", "show what running daemons are doing"),
    "pause": ("autoscaler.ctl.cli_admin", "pause a policy (admin API, on the leader)"),
    "resume": ("autoscaler.ctl.cli_admin", "resume a paused policy (admin API, on the leader)"),
    "override": ("autoscaler.ctl.cli_admin", "hold a policy's replicas for a while (admin API)"),
    "cancel-override": ("autoscaler.ctl.cli_admin", "end a policy's override now (admin API)"),
    "history": ("autoscaler.ctl.cli_history", "a policy's recorded decisions (JSONL for replay)"),
    "gateway": (
        "autoscaler.runtime.gateway_wiring",
        "serve the OpenAI-compatible gateway as its own process",
    ),
}

# Commands whose packages come with an extra: name -> (extra, import names).
EXTRAS: dict[str, tuple[str, tuple[str, ...]]] = {
    "simulate": ("simulate", ("numpy", "matplotlib")),
}


def missing_extra(command: str) -> str | None:
    """The one-line message for a command whose extra is not installed, else None."""
    import importlib.util

    extra, modules = EXTRAS.get(command, ("", ()))
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if not missing:
        return None
    return (
        f"autoscaler {command} needs {' and '.join(missing)}, which "
        f"{'is' if len(missing) == 1 else 'are'} not installed: "
        f"pip install 'autoscaler[{extra}]'"
    )


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    parser = argparse.ArgumentParser(
        prog="autoscaler",
        description="Autoscaling controller for dedicated LLM model deployments.",
    )
    from autoscaler import __version__

    parser.add_argument("--version", action="version", version=f"autoscaler {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers = {}
    for name, (_module, help_text) in COMMANDS.items():
        subparsers[name] = sub.add_parser(name, help=help_text, description=help_text)
    return parser, subparsers


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser, subparsers = build_parser()
    # Parse the command name first, then let only that module add its arguments.
    command = next((a for a in argv if not a.startswith("-")), None)
    if command in EXTRAS:
        problem = missing_extra(command)
        if problem is not None:
            print(problem, file=sys.stderr)
            return 2
    if command in COMMANDS:
        module = importlib.import_module(COMMANDS[command][0])
        module.add_arguments(subparsers[command])
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    module = importlib.import_module(COMMANDS[args.command][0])
    try:
        return int(module.run(args))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`autoscaler replay ... | head`): stop quietly like coreutils
        # do, and keep Python's exit-time flush from failing on the closed pipe again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 128 + 13  # killed by SIGPIPE, as the shell reports it
