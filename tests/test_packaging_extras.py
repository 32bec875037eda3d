"""numpy and matplotlib are the `simulate` extra: the daemon and the operator commands import
neither (checked in a fresh interpreter where importing them fails), and `autoscaler simulate`
without them says which extra to install, in one line."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
POISON = "import sys\nfor name in ('numpy', 'matplotlib'):\n    sys.modules[name] = None\n"
DAEMON_PATH = (
    "autoscaler.cli",
    "autoscaler.runtime.cli_run",
    "autoscaler.runtime.daemon",
    "autoscaler.runtime.runner",
    "autoscaler.runtime.http",
    "autoscaler.runtime.metrics",
    "autoscaler.runtime.reload",
    "autoscaler.demo.cli",
    "autoscaler.providers.registry",
    "autoscaler.sources.registry",
    "autoscaler.store.sqlite",
    "autoscaler.store.postgres",
    "autoscaler.fakecloud.cli",
    "autoscaler.ctl.cli_status",
    "autoscaler.ctl.cli_admin",
    "autoscaler.ctl.cli_history",
    "autoscaler.replay",
)


def python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", POISON + code],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=str(ROOT),
    )


def test_the_poison_works() -> None:
    """The check below can fail: with the poison, importing numpy raises."""
    result = python("import numpy")
    assert result.returncode != 0 and "ModuleNotFoundError" in result.stderr


def test_daemon_import_path_needs_neither_numpy_nor_matplotlib() -> None:
    code = "import importlib\n" + "".join(f"importlib.import_module({m!r})\n" for m in DAEMON_PATH)
    code += "from autoscaler.runtime.cli_run import add_arguments\n"
    result = python(code)
    assert result.returncode == 0, result.stderr[-3000:]


def test_simulate_without_its_extra_says_what_to_install() -> None:
    code = (
        "from autoscaler.cli import main\n"
        "sys.exit(main(['simulate', '--trace', 't.csv', '--baseline', 'hpa', '--out', 'o']))\n"
    )
    result = python(code)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "autoscaler simulate needs numpy and matplotlib, which are not installed: "
        "pip install 'autoscaler[simulate]'"
    ]


def test_pyproject_puts_them_in_the_simulate_extra() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = [d.split(">")[0].split("=")[0].split("[")[0] for d in project["dependencies"]]
    assert "numpy" not in names and "matplotlib" not in names
    extras = project["optional-dependencies"]
    assert {d.split(">")[0] for d in extras["simulate"]} == {"numpy", "matplotlib"}
    assert "autoscaler[simulate]" in extras["dev"]
