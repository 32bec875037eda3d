"""The policy layer stands below the core and the runtime: it imports nothing of them (cron
evaluation, which both need, lives in `autoscaler/cron.py`, a module of its own)."""

from __future__ import annotations

import ast
from pathlib import Path

import autoscaler.policy

POLICY = Path(autoscaler.policy.__file__).parent
ABOVE = ("autoscaler.core", "autoscaler.runtime", "autoscaler.simulate", "autoscaler.fakecloud")


def imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_the_policy_layer_imports_nothing_of_the_core_or_the_runtime() -> None:
    bad = {
        f"{path.name}: {name}"
        for path in POLICY.rglob("*.py")
        for name in imports(path)
        if name.startswith(ABOVE)
    }
    assert bad == set()


def test_cron_is_pure() -> None:
    cron = Path(autoscaler.policy.__file__).parents[1] / "cron.py"
    assert {n for n in imports(cron) if n.startswith("autoscaler")} == set()
    assert not {"time", "anyio", "httpx", "logging", "os"} & imports(cron)
