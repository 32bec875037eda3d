"""`autoscaler schema`: print the JSON Schema of a policy file (for editor validation)."""

from __future__ import annotations

import argparse
import json
import os
import sys

from autoscaler.policy.schema import policy_json_schema


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--indent", type=int, default=2, help="JSON indentation (default 2)")


def run(args: argparse.Namespace) -> int:
    try:
        print(json.dumps(policy_json_schema(), indent=args.indent, ensure_ascii=False))
        sys.stdout.flush()
    except BrokenPipeError:  # `autoscaler schema | head`: the reader left, not an error
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keeps interpreter exit quiet
    return 0
