"""Sizes in the whole `autoscaler` package (issue 13): no module over 400 lines and no function
over 60 unless a sentence starting "Long because" at its top (the module's or the function's
docstring) says why. The check lists every offender at once."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "autoscaler"
MAX_FILE_LINES = 400
MAX_FUNCTION_LINES = 60
REASON = "Long because"


def oversized(folder: Path) -> dict[str, str]:
    """Every module and function under `folder` over the limits -> its docstring (one line)."""
    found: dict[str, str] = {}
    for path in sorted(folder.rglob("*.py")):
        name = path.relative_to(folder).as_posix()
        source = path.read_text()
        tree = ast.parse(source, filename=str(path))
        if len(source.splitlines()) > MAX_FILE_LINES:
            found[name] = " ".join((ast.get_docstring(tree) or "").split())
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                assert node.end_lineno is not None
                if node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES:
                    doc = " ".join((ast.get_docstring(node) or "").split())
                    found[f"{name}:{node.lineno}::{node.name}"] = doc
    return found


def unexplained(folder: Path) -> list[str]:
    """The offenders whose docstring gives no reason."""
    return sorted(name for name, doc in oversized(folder).items() if REASON not in doc)


def test_every_module_and_function_is_small_or_says_why() -> None:
    offenders = unexplained(PACKAGE)
    assert offenders == [], (
        f"over {MAX_FILE_LINES} lines per module / {MAX_FUNCTION_LINES} per function without "
        f"{REASON!r} in the docstring:\n" + "\n".join(offenders)
    )


def test_the_check_sees_long_code_and_its_reason(tmp_path: Path) -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.py").write_text(f'def f():\n    """Long because: a test."""\n{body}\n')
    at_limit = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES - 1))
    (tmp_path / "b.py").write_text(f"def g():\n{at_limit}\n")
    (tmp_path / "c.py").write_text(f"def h():\n{body}\n")
    (tmp_path / "d.py").write_text("x = 1\n" * (MAX_FILE_LINES + 1))
    (tmp_path / "e.py").write_text('"""Long because a table."""\n' + "x = 1\n" * MAX_FILE_LINES)
    assert oversized(tmp_path)["sub/a.py:1::f"] == "Long because: a test."
    assert unexplained(tmp_path) == ["c.py:1::h", "d.py"]
