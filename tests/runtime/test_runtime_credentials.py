"""No door left open (issue 14 §3): an empty, blank or short admin token stops the daemon at
start (one clear line, exit 2); credentials are re-read on reload and when their files
change, so a rotated provider token or admin token takes effect without a restart, and the log
names what changed, never the values."""

from __future__ import annotations

import json
import signal
import subprocess
import uuid
from pathlib import Path

import httpx
import pytest

from autoscaler.policy.model import SecretRef
from autoscaler.runtime.http import MIN_ADMIN_TOKEN, check_admin_token
from autoscaler.secrets import Secret, SecretError
from tests.runtime.daemon_support import (
    PYTHON,
    REPO,
    TOKEN,
    policy_yaml,
    sim_server,
    start_daemon_process,
    wait_for,
    write_config,
)
from tests.services import free_port, require_tcp

GOOD_ADMIN = "admin-" + uuid.uuid4().hex


def _with_admin_token(config: Path, port: int, ref: str) -> None:
    listen = f"  listen: 127.0.0.1:{port}\n"
    text = config.read_text()
    assert listen in text
    config.write_text(text.replace(listen, listen + f"  admin_token: {ref}\n"))


@pytest.mark.parametrize("value", ["", "   ", "\n", "short-token\n"])
def test_check_admin_token_refuses_empty_blank_and_short(value: str) -> None:
    with pytest.raises(SecretError, match=f"at least {MIN_ADMIN_TOKEN} characters") as info:
        check_admin_token(Secret(value.strip(), origin="env:ADMIN"))
    assert "env:ADMIN" in str(info.value)
    if value.strip():
        assert value.strip() not in str(info.value)  # never the value


def test_check_admin_token_accepts_a_long_one() -> None:
    token = Secret("x" * MIN_ADMIN_TOKEN, origin="file:/t")
    assert check_admin_token(token) is token
    assert check_admin_token(None) is None


@pytest.mark.parametrize("value", ["", "   \n", "too-short"])
def test_daemon_refuses_to_start_with_a_weak_admin_token(tmp_path: Path, value: str) -> None:
    port = free_port()
    policies = {"p": policy_yaml("p-weak", redis_key="unused")}
    config = write_config(tmp_path, "http://127.0.0.1:9", policies, http_port=port)
    _with_admin_token(config, port, "{env: AUTOSCALER_TEST_ADMIN}")
    done = subprocess.run(
        [PYTHON, "-m", "autoscaler", "run", "--config", str(config)],
        env={"AUTOSCALER_TEST_ADMIN": value, "PATH": "/usr/bin:/bin"},
        cwd=str(REPO),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert "http.admin_token" in lines[0] and "AUTOSCALER_TEST_ADMIN" in lines[0]
    assert "Traceback" not in done.stderr


def test_secret_refs_name_their_files(tmp_path: Path) -> None:
    from autoscaler.secrets import credential_files

    token = tmp_path / "tok"
    token.write_text("x")
    refs = {"a": SecretRef(file=str(token)), "b": SecretRef(env="X"), "c": None}
    assert credential_files(refs.values()) == [str(token)]


@pytest.mark.slow
def test_rotated_credentials_take_effect_without_a_restart(tmp_path: Path) -> None:
    require_tcp("Redis", 6379)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "daemon.log"
    admin_file = tmp_path / "admin_token"
    admin_file.write_text(GOOD_ADMIN + "\n")
    with sim_server(provision_seconds=0.2) as sim:
        config = write_config(
            tmp_path,
            sim.url,
            {"web": policy_yaml("web-rot", redis_key=f"t:{uuid.uuid4().hex}", min_replicas=1)},
            http_port=port,
        )
        _with_admin_token(config, port, f"{{file: {admin_file}}}")
        token_file = tmp_path / "token"
        token_file.write_text("a-stale-provider-token\n")  # the provider refuses it (401)
        proc = start_daemon_process(config, log=log)
        try:

            def status() -> dict | None:  # type: ignore[type-arg]
                try:
                    r = httpx.get(f"{base}/status", timeout=2)
                    return r.json() if r.status_code == 200 else None  # type: ignore[no-any-return]
                except httpx.HTTPError:
                    return None

            wait_for(
                lambda: (
                    (status() or {}).get("policies", {}).get("web-rot", {}).get("last_error")
                    or proc.poll() is not None
                ),
                60,
                "the provider's refusal in /status",
            )
            assert proc.poll() is None, log.read_text()[-3000:]
            assert sim.current("web-rot") == []
            # Rotate the provider token: the file changes, the daemon re-reads it.
            token_file.write_text(TOKEN + "\n")
            wait_for(lambda: sim.current("web-rot"), 60, "deployment created with the new token")
            # Rotate the admin token, then tell the daemon (SIGHUP) as an operator would.
            new_admin = "admin-" + uuid.uuid4().hex
            admin_file.write_text(new_admin)
            proc.send_signal(signal.SIGHUP)

            def admin(token: str) -> int:
                return httpx.post(
                    f"{base}/policies/web-rot/pause",
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=5,
                ).status_code

            wait_for(lambda: admin(new_admin) == 200, 60, "the new admin token accepted")
            assert admin(GOOD_ADMIN) == 401
            # No signal this time: the watcher sees the credential file change.
            newest = "admin-" + uuid.uuid4().hex
            admin_file.write_text(newest + "\n")
            wait_for(lambda: admin(newest) == 200, 60, "the watched file re-read")
            assert admin(new_admin) == 401
            # A rotation to a weak token is refused; the one in use stays.
            admin_file.write_text("   \n")
            wait_for(lambda: "credentials_error" in log.read_text(), 60, "weak token refused")
            assert admin(newest) == 200
            text = log.read_text()
            events = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
            changed = [e for e in events if e.get("event") == "credentials_changed"]
            names = {n for e in changed for n in e["changed"]}
            assert {"providers.sim.token", "http.admin_token"} <= names, changed
            for secret in (TOKEN, GOOD_ADMIN, new_admin, newest, "a-stale-provider-token"):
                assert secret not in text
        finally:
            proc.terminate()
            proc.wait(30)


def test_an_empty_token_never_opens_the_admin_api() -> None:
    import anyio

    from tests.runtime.test_runtime_http_app import FakeControl, make_client

    async def scenario() -> None:
        control = FakeControl()
        async with make_client(control, token="") as client:
            for header in ("Bearer ", "Bearer", "bearer  "):
                response = await client.post(
                    "/policies/chat/pause", headers={"Authorization": header}
                )
                assert response.status_code == 403, (header, response.text)
        assert control.calls == []

    anyio.run(scenario)
