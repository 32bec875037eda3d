"""The Dockerfile, checked without a Docker engine: its instructions are parsed, its COPY and
`pip install` steps are replayed in a fresh virtual environment (the build of the compiled core
included, with this machine's C compiler), and the installed command is started (`--version`,
a bad config, the HEALTHCHECK probe against a real HTTP server); the compiled core gives the
golden decision streams to the bit."""

from __future__ import annotations

import fnmatch
import json
import os
import shlex
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from autoscaler import __version__

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    result, pending = [], ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = pending + line
        pending = ""
        keyword, _, args = full.partition(" ")
        result.append((keyword.upper(), args.strip()))
    assert not pending, "Dockerfile ends inside a continued line"
    return result


def values(keyword: str) -> list[str]:
    return [args for kw, args in instructions() if kw == keyword]


VENV = "/opt/autoscaler"  # where the builder stage installs, copied whole into the runtime


def test_dockerfile_shape() -> None:
    # Two stages on one base: the builder installs, the runtime gets only the venv.
    assert values("FROM") == ["python:3.11-slim AS builder", "python:3.11-slim"]
    assert values("COPY")[-1] == f"--from=builder {VENV} {VENV}"
    assert any("constraints.txt" in c for c in values("COPY"))
    [install] = [r for r in values("RUN") if "pip install" in r]
    assert "--constraint constraints.txt" in install and install.startswith(
        f"python -m venv {VENV}"
    )
    labels = " ".join(values("LABEL"))
    for key in ("title", "description", "version", "licenses"):
        assert f"org.opencontainers.image.{key}=" in labels
    env = " ".join(values("ENV"))
    assert f"PATH={VENV}/bin:$PATH" in env
    assert "AUTOSCALER_CONFIG=/etc/autoscaler/config.yaml" in env
    assert "AUTOSCALER_LISTEN=0.0.0.0:9464" in env
    [user] = values("USER")
    assert user.split(":")[0] not in ("root", "0")
    assert json.loads(values("ENTRYPOINT")[0]) == ["autoscaler", "run"]
    assert values("CMD") == []  # the config comes from AUTOSCALER_CONFIG
    assert values("VOLUME") == ["/var/lib/autoscaler"]
    assert values("EXPOSE") == ["9464"]
    [health] = values("HEALTHCHECK")
    assert "/healthz" in DOCKERFILE.read_text() and "CMD" in health
    assert "curl" not in health and "wget" not in health
    # USER comes after every RUN: nothing runs as root at run time.
    order = [kw for kw, _ in instructions()]
    assert max(i for i, kw in enumerate(order) if kw == "RUN") < order.index("USER")


def test_constraints_pin_every_runtime_dependency() -> None:
    """constraints.txt (scripts/lock.sh) pins each dependency of pyproject.toml, at a version
    its specifier accepts, and nothing of the `simulate` extra."""
    import tomllib

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"not pinned: {line}"
            pins[canonicalize_name(name)] = version.strip()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for text in project["dependencies"]:
        requirement = Requirement(text.split("#")[0])
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is not pinned in constraints.txt"
        assert requirement.specifier.contains(pins[name]), (name, pins[name])
    assert "numpy" not in pins and "matplotlib" not in pins


def healthcheck_command() -> list[str]:
    [health] = values("HEALTHCHECK")
    return json.loads(health[health.index("CMD") + 3 :].strip())


def dockerignore_patterns() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [p.strip() for p in lines if p.strip() and not p.startswith("#")]


def copy_like_docker(src: Path, dest: Path, patterns: list[str]) -> None:
    def ignored(directory: str, names: list[str]) -> set[str]:
        out = set()
        for name in names:
            rel = os.path.relpath(os.path.join(directory, name), ROOT)
            for pattern in patterns:
                bare = pattern.removeprefix("**/")
                if fnmatch.fnmatch(rel, pattern) or fnmatch.fnmatch(name, bare):
                    out.add(name)
        return out

    if src.is_dir():
        shutil.copytree(src, dest, ignore=ignored, dirs_exist_ok=True)
    else:
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh venv with the project installed by replaying the Dockerfile's steps."""
    base = tmp_path_factory.mktemp("image")
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    image_root = base / "root"
    workdir = Path("/")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    installed_steps = 0
    for keyword, args in instructions():
        if keyword == "ENV":
            parts = shlex.split(args)
            for part in parts:
                if "=" in part:
                    key, _, value = part.partition("=")
                    env[key] = value
        elif keyword == "WORKDIR":
            workdir = Path(args)
            (image_root / workdir.relative_to("/")).mkdir(parents=True, exist_ok=True)
        elif keyword == "COPY" and args.startswith("--from="):
            continue  # the stages share `image_root`: what the builder made is already there
        elif keyword == "COPY":
            *sources, dest = shlex.split(args)
            target = image_root / workdir.relative_to("/") / dest
            for source in sources:
                src = ROOT / source.rstrip("/")
                to = (
                    target / src.name if dest.endswith("/") and not source.endswith("/") else target
                )
                copy_like_docker(src, to, dockerignore_patterns())
        elif keyword == "RUN" and "pip install" in args:
            # The install step, run with the venv's pip/python first on PATH (in the image
            # they are the base image's). pip uses the package index configured on this host.
            # The venv path is absolute in the image: here it lives under `image_root`.
            cwd = image_root / workdir.relative_to("/")
            command = args.replace(VENV, str(image_root / VENV.lstrip("/")))
            result = subprocess.run(
                ["/bin/sh", "-c", command],
                cwd=cwd,
                env=env,
                capture_output=True,
                text=True,
                timeout=1200,  # it compiles the core (about 30 s on a quiet 2-core machine)
            )
            assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
            installed_steps += 1
    assert installed_steps >= 1, "the Dockerfile has no `pip install` step"
    yield image_root / VENV.lstrip("/")


def run_installed(
    venv: Path, *args: str, extra_env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra_env or {})
    return subprocess.run(
        list(args), env=env, capture_output=True, text=True, timeout=timeout, cwd=venv.parent
    )


@pytest.mark.slow
def test_installed_command_starts(installed: Path) -> None:
    autoscaler = installed / "bin" / "autoscaler"
    assert autoscaler.exists()
    version = run_installed(installed, str(autoscaler), "--version")
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == f"autoscaler {__version__}"
    # The installed package is the copy, not this checkout.
    where = run_installed(
        installed,
        str(installed / "bin" / "python"),
        "-c",
        "import autoscaler; print(autoscaler.__file__)",
    )
    assert str(installed) in where.stdout


@pytest.mark.slow
def test_installed_run_rejects_a_bad_config(installed: Path, tmp_path: Path) -> None:
    bad = tmp_path / "config.yaml"
    bad.write_text("policies: 12\nproviders: {x: {type: nope}}\nhttp: {listen: 1}\n")
    result = run_installed(
        installed, str(installed / "bin" / "autoscaler"), "run", "--config", str(bad)
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "providers.x.type" in result.stdout + result.stderr
    assert str(bad) in result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    missing = run_installed(
        installed,
        str(installed / "bin" / "autoscaler"),
        "run",
        "--config",
        str(tmp_path / "nope.yaml"),
    )
    assert missing.returncode == 2
    assert "Traceback" not in missing.stderr


class _Health(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/healthz" else 404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.slow
def test_healthcheck_probe(installed: Path) -> None:
    command = healthcheck_command()
    assert command[0] == "python"
    python = str(installed / "bin" / "python")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/healthz"
        probe = [python, *command[1:]]
        ok = run_installed(installed, *probe, extra_env={"AUTOSCALER_HEALTH_URL": url})
        assert ok.returncode == 0, ok.stderr
        _Health.status = 503
        failing = run_installed(installed, *probe, extra_env={"AUTOSCALER_HEALTH_URL": url})
        assert failing.returncode != 0
    finally:
        _Health.status = 200
        server.shutdown()
        server.server_close()
    down = run_installed(installed, *probe, extra_env={"AUTOSCALER_HEALTH_URL": url})
    assert down.returncode != 0


@pytest.mark.slow
def test_image_is_without_the_simulate_extra(installed: Path) -> None:
    python = str(installed / "bin" / "python")
    absent = run_installed(installed, python, "-c", "import numpy")
    assert absent.returncode != 0 and "No module named 'numpy'" in absent.stderr
    simulate = run_installed(installed, str(installed / "bin" / "autoscaler"), "simulate")
    assert simulate.returncode == 2
    assert "pip install 'autoscaler[simulate]'" in simulate.stderr
    # The config path comes from the environment, as the image sets it.
    missing = run_installed(
        installed,
        str(installed / "bin" / "autoscaler"),
        "run",
        extra_env={"AUTOSCALER_CONFIG": str(installed / "nope.yaml")},
    )
    assert missing.returncode == 2 and "nope.yaml" in missing.stderr, missing.stderr


# Run by the image's Python: the golden streams (tests/core/golden.py, stdlib and the core only)
# loaded from this checkout by path, the package they drive the installed one.
_GOLDEN = """
import importlib.util, json, sys
import autoscaler.core
spec = importlib.util.spec_from_file_location("golden", sys.argv[1])
golden = importlib.util.module_from_spec(spec)
spec.loader.exec_module(golden)
recorded = json.loads(golden.DATA.read_text())
core = [name for name in sys.modules if name.startswith("autoscaler.core.")]
modules = {name: sys.modules[name].__file__ for name in core}
same = {name: golden.summary(name) == recorded[name] for name in golden.SCENARIOS}
print(json.dumps({"modules": modules, "same": same, "compiled": autoscaler.core.COMPILED}))
"""


@pytest.mark.slow
def test_image_core_is_compiled_and_decides_as_the_source(installed: Path) -> None:
    """setup.py's compiled modules are extension modules in the image (the others are the
    sources), and every golden scenario's decisions and states match the recorded digests."""
    sys.path.insert(0, str(ROOT))
    try:
        from setup import INTERPRETED
    finally:
        sys.path.remove(str(ROOT))
    result = run_installed(
        installed,
        str(installed / "bin" / "python"),
        "-c",
        _GOLDEN,
        str(ROOT / "tests" / "core" / "golden.py"),
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout)
    modules = found["modules"]
    assert len(modules) >= 20, modules
    for name, path in modules.items():
        assert path.startswith(str(installed)), (name, path)
        interpreted = name.rsplit(".", 1)[1] in INTERPRETED
        assert path.endswith(".py") == interpreted, (name, path)
    assert found["same"] and all(found["same"].values()), found["same"]
    assert found["compiled"] is True  # what autoscaler_build_info{core="compiled"} reports


@pytest.mark.parametrize(
    ("setting", "command", "said"),
    [
        ("yes", "--name", "AUTOSCALER_COMPILE='yes': expected 1 (compile the core) or 0"),
        ("1", "editable_wheel", "an editable install cannot be compiled"),
    ],
)
def test_setup_refuses_a_compile_it_cannot_do(setting: str, command: str, said: str) -> None:
    """A setting that is not 0 or 1, or a compiled editable install: one line and a failed
    build, rather than a silent pure build or modules shadowing the sources."""
    env = {**os.environ, "AUTOSCALER_COMPILE": setting}
    result = subprocess.run(
        [sys.executable, "setup.py", command],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert said in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
