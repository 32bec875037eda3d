"""House rule for the core: no module over ~400 lines and no function over ~60 without a
reason written at its top (the function's docstring says "on purpose")."""

from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "autoscaler" / "core"
MAX_FILE = 400
MAX_FUNCTION = 60


def test_no_core_module_over_400_lines() -> None:
    long = {
        p.name: n for p in CORE.glob("*.py") if (n := len(p.read_text().splitlines())) > MAX_FILE
    }
    assert long == {}


def test_no_core_function_over_60_lines_without_a_reason() -> None:
    long = []
    for path in sorted(CORE.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            assert node.end_lineno is not None
            if node.end_lineno - node.lineno + 1 <= MAX_FUNCTION:
                continue
            if "on purpose" not in (ast.get_docstring(node) or ""):
                long.append(f"{path.name}:{node.lineno} {node.name}")
    assert long == []
