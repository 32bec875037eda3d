"""The layering rules, enforced by reading every import of every module (`ast`; module-level,
function-level and `TYPE_CHECKING` imports alike, for the layers and for the cycle check):

- `MAY_IMPORT`: what each part of the package may import of the others. The README's
  Development section shows this table (`test_readme_shows_the_layer_table` keeps them equal).
- No import cycle between modules anywhere in the package.
- `autoscaler/core` is pure: nothing from the I/O layers (sources, providers, runtime, store,
  simulators), no async or HTTP library, no clock, logging or randomness, no `datetime.now`.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "autoscaler"
CORE = PACKAGE / "core"

# What each part (a subpackage or a top-level module of `autoscaler`) may import of the other
# parts, bottom to top. A part always may import itself and anything outside the package.
MAY_IMPORT: dict[str, tuple[str, ...]] = {
    # foundations: nothing of the package
    "autoscaler": (),  # the package itself: its version
    "cron": (),  # cron expressions, shared by policy and core
    "httpserver": (),
    "textcut": (),  # a value's text cut to a length for a message, shared by every layer
    "httpbody": (),  # reading an HTTP answer's body within a cap, shared by sources and providers
    "store": ("textcut",),
    "fakecloud": (),  # the fake provider APIs (and their fake vLLM): standalone servers
    # the policy layer (secrets resolves the SecretRef the policy model declares)
    "secrets": ("policy",),
    "policy": ("cron", "secrets", "store", "textcut"),
    # the pure core and what only needs it
    "core": ("cron", "policy"),
    "replay": ("core", "policy", "sources", "textcut"),  # sources.jsondoc: the strict JSON decoder
    "simulate": ("core", "cron", "policy"),
    # the I/O edges
    "providers": (
        "core",
        "httpbody",
        "policy",
        "secrets",
        "textcut",
    ),  # core: the status words, timefmt
    "gateway": ("policy", "providers", "secrets"),
    "sources": ("gateway", "httpbody", "policy", "secrets", "textcut"),
    # the daemon
    "runtime": (
        "autoscaler",
        "core",
        "cron",
        "gateway",
        "httpserver",
        "policy",
        "providers",
        "secrets",
        "sources",
        "store",
        "textcut",
    ),
    # on top: clients and commands
    "ctl": ("core", "policy", "runtime", "secrets"),
    "demo": ("core", "ctl", "fakecloud", "policy", "runtime", "secrets"),
    "cli": ("autoscaler",),  # the commands themselves are imported by name, when run
    "__main__": ("cli",),
}
# Pairs allowed both ways in the table: a cycle between parts, never between modules.
PART_CYCLES = {frozenset({"policy", "secrets"})}

FORBIDDEN_MODULES = (
    "autoscaler.sources",
    "autoscaler.providers",
    "autoscaler.runtime",
    "autoscaler.store",
    "autoscaler.fakecloud",
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


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def modules(root: Path) -> dict[str, Path]:
    return {module_name(p, root): p for p in sorted(root.rglob("*.py"))}


def imports(name: str, path: Path, known: Mapping[str, Path]) -> Iterator[tuple[str, int]]:
    """(module imported, line) for every import in `path` that names a module in `known`,
    `if TYPE_CHECKING:` ones included: `from a import b` is `a.b` when that is a module,
    else `a`."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(up + ([node.module] if node.module else []))
            targets = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names
            ]
        else:
            continue
        for target in targets:
            while target and target not in known and "." in target:
                target = target.rpartition(".")[0]
            if target in known and target != name:
                yield target, node.lineno


def import_graph(root: Path) -> dict[str, set[str]]:
    """Who imports whom: module-level, function-level and `if TYPE_CHECKING:` imports. A
    type-only import back is a circle too: the two modules cannot be read, nor moved, one
    without the other (the values both need belong in a module below them)."""
    known = modules(root)
    return {name: {t for t, _ in imports(name, path, known)} for name, path in known.items()}


def part(module: str) -> str:
    """`autoscaler.runtime.daemon` -> `runtime`; `autoscaler` -> `autoscaler`."""
    pieces = module.split(".")
    return pieces[1] if len(pieces) > 1 else pieces[0]


def layer_violations(root: Path, table: Mapping[str, tuple[str, ...]]) -> list[str]:
    known = modules(root)
    found = []
    for name, path in known.items():
        src = part(name)
        if src not in table:
            found.append(f"{path.relative_to(root.parent)}: part {src!r} is not in MAY_IMPORT")
            continue
        for target, line in imports(name, path, known):
            dst = part(target)
            if dst != src and dst not in table[src]:
                found.append(
                    f"{path.relative_to(root.parent)}:{line}: {src} may not import {dst} ({target})"
                )
    return found


def cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def layer_table_text(table: Mapping[str, tuple[str, ...]]) -> list[str]:
    """The table as the README shows it: one line per part."""
    return [
        f"{name:<11} may import: {', '.join(deps) or '(nothing of the package)'}"
        for name, deps in table.items()
    ]


def test_every_import_follows_the_layer_table() -> None:
    assert layer_violations(PACKAGE, MAY_IMPORT) == []


def test_no_import_cycle_between_modules() -> None:
    assert cycles(import_graph(PACKAGE)) == []


def test_the_layer_table_is_one_direction() -> None:
    graph = {name: set(deps) for name, deps in MAY_IMPORT.items()}
    for pair in PART_CYCLES:
        a, b = sorted(pair)
        graph[a].discard(b)
    assert cycles(graph) == []


def test_readme_shows_the_layer_table() -> None:
    readme = (ROOT / "README.md").read_text()
    begin, end = "<!-- layers:begin -->", "<!-- layers:end -->"
    assert begin in readme and end in readme, f"README.md lacks the {begin} block"
    shown = readme.split(begin, 1)[1].split(end, 1)[0].strip().splitlines()
    expected = ["```text", *layer_table_text(MAY_IMPORT), "```"]
    assert shown == expected, "README layer table differs; put this there:\n" + "\n".join(expected)


def test_checkers_catch_a_cycle_and_a_forbidden_import(tmp_path: Path) -> None:
    pkg = tmp_path / "autoscaler"
    (pkg / "core").mkdir(parents=True)
    (pkg / "runtime").mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "core" / "__init__.py").write_text("")
    (pkg / "runtime" / "__init__.py").write_text("")
    (pkg / "core" / "a.py").write_text("def f():\n    from autoscaler.runtime import b\n")
    (pkg / "runtime" / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..core import a\n"
    )
    assert cycles(import_graph(pkg)) == [["autoscaler.core.a", "autoscaler.runtime.b"]]
    (pkg / "runtime" / "b.py").write_text("import typing\n")
    assert cycles(import_graph(pkg)) == []
    (pkg / "runtime" / "b.py").write_text("from ..core import a\n")
    assert cycles(import_graph(pkg)) == [["autoscaler.core.a", "autoscaler.runtime.b"]]
    table = {"autoscaler": (), "core": (), "runtime": ("core",)}
    assert layer_violations(pkg, table) == [
        "autoscaler/core/a.py:2: core may not import runtime (autoscaler.runtime.b)"
    ]


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
