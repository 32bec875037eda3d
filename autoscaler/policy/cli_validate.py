"""`autoscaler validate PATH...` and `autoscaler validate --config FILE`: check without running.

Errors go to stdout, one `FILE:LINE:COL: key.path: message` line each (exit 1), so editors
and CI can parse them; the `ok:` summary goes to stderr (exit 0). With `--config`, the daemon
config and every policy it loads are checked as `autoscaler run` would (each create spec
against its profile's provider), then every credential they name must resolve: a missing one
exits 2, as `run` does. Nothing is started and no provider is called.
"""

from __future__ import annotations

import argparse
import sys

from autoscaler.policy.errors import ValidationFailed
from autoscaler.policy.loader import load_daemon, load_located

EXIT_INVALID = 1
EXIT_CREDENTIALS = 2  # as `autoscaler run` exits on config errors


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help="policy file, folder (every *.yaml / *.yml in it) or glob",
    )
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="a daemon config: check it, every policy it loads and the credentials they name",
    )


def run(args: argparse.Namespace) -> int:
    if (args.config is None) == (not args.paths):
        print("autoscaler validate: give PATH... or --config FILE (not both)", file=sys.stderr)
        return 2
    if args.config is not None:
        return _run_config(args.config)
    located, files, errors = load_located(args.paths)
    if errors:
        for error in errors:
            print(error, file=sys.stdout)
        return EXIT_INVALID
    print(f"ok: {len(located)} policies in {len(files)} files", file=sys.stderr)
    return 0


def _run_config(config_path: str) -> int:
    from autoscaler.policy.credentials import check_credentials

    try:
        config, policies = load_daemon(config_path)
    except ValidationFailed as exc:
        for error in exc.errors:
            print(error, file=sys.stdout)
        return EXIT_INVALID
    missing = check_credentials(config, policies)
    if missing:
        for error in missing:
            print(error, file=sys.stdout)
        return EXIT_CREDENTIALS
    print(
        f"ok: {config_path} with {len(config.providers)} provider profiles and "
        f"{len(policies)} policies; every credential resolves",
        file=sys.stderr,
    )
    return 0
