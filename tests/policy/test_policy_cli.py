"""`autoscaler validate` and `autoscaler schema`: exit codes and output format."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from autoscaler.cli import main
from tests.services import require

from .test_policy_errors import BASE

ROOT = Path(__file__).resolve().parents[2]
ERROR_LINE = re.compile(r"^[^:]+:\d+:\d+: [^:]+: .+$")


def test_validate_ok(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a.yaml").write_text(BASE)
    (tmp_path / "b.yaml").write_text(BASE.replace("name: chat", "name: other"))
    assert main(["validate", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert out == ""
    assert err.strip() == "ok: 2 policies in 2 files"


def test_validate_errors_go_to_stdout_one_per_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BASE.replace("max: 4", "max: 0").replace("aggregate", "x") + "tolerence: 1\n")
    good = tmp_path / "good.yaml"
    good.write_text(BASE.replace("name: chat", "name: other"))
    assert main(["validate", str(good), str(bad), str(tmp_path / "missing.yaml")]) == 1
    out, err = capsys.readouterr()
    assert err == ""
    assert out.splitlines() == [
        f"{bad}:3:25: replicas.max: must be >= 1 and <= 10000, got 0",
        f'{bad}:8:1: tolerence: unknown key "tolerence"; allowed keys: [name, deployment, '
        "replicas, interval, metrics, behavior, scale_to_zero, on_metric_failure, "
        "on_deployment_failure, schedules, cost, dry_run, paused, gateway, objective]",
        f"{tmp_path}/missing.yaml:1:1: (file): cannot read: No such file or directory",
    ]
    assert all(ERROR_LINE.match(line) for line in out.splitlines())


def test_validate_needs_a_path_or_a_config(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate"]) == 2
    assert "give PATH... or --config FILE" in capsys.readouterr().err
    assert main(["validate", "x.yaml", "--config", "c.yaml"]) == 2


def test_schema_prints_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert "metrics" in schema["properties"]


def test_validate_as_a_real_command_on_the_policies_folder() -> None:
    script = ROOT / ".venv" / "bin" / "autoscaler"
    require(script.exists(), f"the console script {script} (pip install -e .)")
    done = subprocess.run(
        [str(script), "validate", "policies/"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout == ""
    assert re.fullmatch(r"ok: \d+ policies in \d+ files\n", done.stderr)


def test_validate_as_a_real_command_reports_errors(tmp_path: Path) -> None:
    script = ROOT / ".venv" / "bin" / "autoscaler"
    require(script.exists(), f"the console script {script} (pip install -e .)")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [\n")
    done = subprocess.run(
        [str(script), "validate", str(bad)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert done.stdout.startswith(f"{bad}:2:1: (root): invalid YAML: ")
    assert "Traceback" not in done.stdout + done.stderr
