"""The layering rule, enforced: `autoscaler/core` is pure.

It imports nothing from the I/O layers (sources, providers, runtime, store, simulators),
no async or HTTP library, no clock, logging or randomness, and never calls `datetime.now`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parent.parent / "autoscaler" / "core"

FORBIDDEN_MODULES = (
    "autoscaler.sources",
    "autoscaler.providers",
    "autoscaler.runtime",
    "autoscaler.store",
    "autoscaler.sim",
    "autoscaler.simulate",
    "autoscaler.secrets",
    "anyio",
    "asyncio",
    "httpx",
    "time",
    "logging",
    "structlog",
    "random",
    "socket",
    "sqlite3",
    "os",
    "threading",
)
FORBIDDEN_CALLS = {"now", "utcnow", "today", "time", "monotonic", "perf_counter"}


def _core_files() -> list[Path]:
    return sorted(CORE.rglob("*.py"))


def _forbidden(module: str) -> bool:
    return any(module == m or module.startswith(m + ".") for m in FORBIDDEN_MODULES)


def core_violations(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [f"import {a.name}" for a in node.names if _forbidden(a.name)]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:  # relative imports stay inside core
                continue
            if _forbidden(module):
                found.append(f"from {module} import ...")
            if module == "datetime":
                found += [
                    f"from datetime import {a.name}"
                    for a in node.names
                    if a.name in FORBIDDEN_CALLS
                ]
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in FORBIDDEN_CALLS
        ):
            found.append(f"call .{node.func.attr}() at line {node.lineno}")
    return found


def test_core_exists() -> None:
    assert _core_files(), "autoscaler/core has no modules"


@pytest.mark.parametrize("path", _core_files(), ids=lambda p: p.name)
def test_core_is_pure(path: Path) -> None:
    assert core_violations(path) == []


def test_checker_catches_violations(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import httpx\nfrom autoscaler.providers.base import Provider\n"
        "import datetime\nx = datetime.datetime.now()\nimport time\n"
    )
    found = core_violations(bad)
    assert "import httpx" in found
    assert "from autoscaler.providers.base import ..." in found
    assert any(".now()" in f for f in found)
    assert "import time" in found
