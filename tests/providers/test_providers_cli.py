"""`autoscaler sim-provider` as a subprocess: prints URL and token, serves the API with the
token, applies fault flags, refuses bad flags with a clear message."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

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


def _start(provider: str, *extra: str) -> tuple[subprocess.Popen[str], list[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "autoscaler", "sim-provider", "--provider", provider,
         "--port", "0", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    lines = []
    while not lines or not lines[-1].startswith("    token: "):
        line = proc.stdout.readline()
        assert line, f"sim-provider ended early: {proc.stderr.read() if proc.stderr else ''}"
        lines.append(line.rstrip("\n"))
    return proc, lines


@pytest.mark.parametrize("provider", ["neevcloud", "netmind", "nebius"])
def test_sim_provider_prints_a_config_that_talks_to_it(
    provider: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import anyio

    from autoscaler.policy.loader import load_daemon_config_text
    from autoscaler.providers.registry import build_provider
    from autoscaler.secrets import resolve

    proc, lines = _start(provider, "--error-rate", "1.0")
    try:
        url = lines[0].split(" at ")[1]
        token = lines[1].removeprefix("token: ")
        export = next(line for line in lines if line.startswith("export "))
        name, _, value = export.removeprefix("export ").partition("=")
        assert value == token
        snippet = "\n".join(lines[lines.index("providers:") :])
        config = load_daemon_config_text(
            f"policies: p\nstate: {{url: 'sqlite:///{tmp_path}/s.db'}}\n{snippet}\n",
            str(tmp_path / "config.yaml"),
        )
        profile = config.providers["sim"]
        assert profile.type == provider and profile.base_url == url
        monkeypatch.setenv(name, value)
        secret = resolve(profile.token)
        assert secret is not None and secret.reveal() == token
        # Health answers without a token and without faults, even at an error rate of 1.
        health = httpx.get(f"{url}/healthz", timeout=5)
        assert health.status_code == 200 and health.json()["provider"] == provider
        httpx.post(f"{url}/_sim/faults", json={"error_rate": 0.0}, timeout=5)

        async def listed() -> list[Any]:
            client = build_provider(profile)
            try:
                return list(await client.list())
            finally:
                await client.aclose()

        assert anyio.run(listed) == []  # the printed config reaches the API
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_sim_provider_help_names_every_default() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "autoscaler", "sim-provider", "--help"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode == 0
    text = " ".join(done.stdout.split())
    for flag, default in [
        ("--host", "127.0.0.1"), ("--provision-seconds", "5.0"), ("--error-rate", "0.0"),
        ("--error-status", "500"), ("--latency", "0.0"), ("--rate-limit-rate", "0.0"),
        ("--retry-after", "1.0"), ("--drop-rate", "0.0"), ("--fail-rate", "0.0"),
    ]:  # fmt: skip
        after = text[text.index(f"{flag} ", text.index("options:")) :]
        assert f"(default: {default})" in after[:200], flag
    assert "(default: None)" not in text
