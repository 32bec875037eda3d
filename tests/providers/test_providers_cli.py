"""`autoscaler sim-provider` as a subprocess: prints URL and token, serves the API with the
token, applies fault flags, refuses bad flags with a clear message."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from tests.services import free_port


@pytest.fixture
def sim_process() -> Iterator[tuple[str, str]]:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "autoscaler",
            "sim-provider",
            "--provider",
            "neevcloud",
            "--port",
            str(port),
            "--provision-seconds",
            "0",
            "--rate-limit-rate",
            "0",
            "--error-status",
            "503",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first, second = proc.stdout.readline().strip(), proc.stdout.readline().strip()
        assert first == f"neevcloud simulator at http://127.0.0.1:{port}", proc.stderr
        assert second.startswith("token: ") and len(second) > len("token: ") + 16
        yield first.split(" at ")[1], second.removeprefix("token: ")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_sim_provider_serves_the_api_with_the_printed_token(sim_process: tuple[str, str]) -> None:
    url, token = sim_process
    path = "/api/v1beta1/orgs/any-org/projects/any-project/aimodels"
    with httpx.Client(base_url=url, timeout=5) as http:
        assert http.get(path).status_code == 401
        listed = http.get(path, headers={"Authorization": f"Bearer {token}"})
        assert listed.status_code == 200
        assert listed.json()["items"] == []
        faults = http.post("/_sim/faults", json={"error_rate": 1.0}).json()["faults"]
        assert faults["error_status"] == 503
        failing = http.get(path, headers={"Authorization": f"Bearer {token}"})
        assert failing.status_code == 503 and failing.json()["code"] == "internal_error"


def test_sim_provider_rejects_bad_flags_clearly() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "autoscaler",
            "sim-provider",
            "--provider",
            "neevcloud",
            "--port",
            "1",
            "--drop-rate",
            "1.5",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert "--drop-rate: '1.5' must be a probability between 0 and 1" in done.stderr
