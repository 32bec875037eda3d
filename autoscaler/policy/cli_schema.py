"""`autoscaler schema`: print the JSON Schema of a policy file (for editor validation)."""

from __future__ import annotations

import argparse
import json

from autoscaler.policy.schema import policy_json_schema


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--indent", type=int, default=2, help="JSON indentation (default 2)")


def run(args: argparse.Namespace) -> int:
    print(json.dumps(policy_json_schema(), indent=args.indent, ensure_ascii=False))
    return 0
