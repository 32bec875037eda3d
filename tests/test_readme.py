"""The README stays true: its set-up commands, `.ci/run` calling the test command, and the
reason-code table covering every code the core can emit."""

from __future__ import annotations

import re
from pathlib import Path

from autoscaler.cli import COMMANDS
from autoscaler.core.reasons import REASONS

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def _sh_blocks() -> list[str]:
    return [b.strip() for b in re.findall(r"```sh\n(.*?)```", README, flags=re.S)]


def test_readme_has_the_two_setup_commands() -> None:
    blocks = _sh_blocks()
    assert blocks[0].endswith("autoscaler demo --duration 60")
    assert blocks[1] == "bash scripts/test.sh"


def test_ci_runs_exactly_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    commands = [
        line.strip()
        for line in ci.splitlines()
        if line.strip() and not line.lstrip().startswith(("#", "set ", "cd "))
    ]
    assert commands == [f"exec {_sh_blocks()[1]}"]


def test_every_reason_code_is_documented() -> None:
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", README, flags=re.M))
    assert set(REASONS) <= documented, sorted(set(REASONS) - documented)


def test_every_command_is_documented() -> None:
    for name in COMMANDS:
        assert f"autoscaler {name}" in README, name
