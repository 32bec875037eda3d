"""`autoscaler validate PATH...`: check policy files, folders or globs.

Errors go to stdout, one `FILE:LINE:COL: key.path: message` line each (exit 1), so editors
and CI can parse them; the `ok:` summary goes to stderr (exit 0).
"""

from __future__ import annotations

import argparse
import sys

from autoscaler.policy.loader import load_located


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="policy file, folder (every *.yaml / *.yml in it) or glob",
    )


def run(args: argparse.Namespace) -> int:
    located, files, errors = load_located(args.paths)
    if errors:
        for error in errors:
            print(error, file=sys.stdout)
        return 1
    print(f"ok: {len(located)} policies in {len(files)} files", file=sys.stderr)
    return 0
