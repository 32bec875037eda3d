"""A credential that does not resolve is a config error: one located line naming the variable
or file and whose credential it is; `validate --config` and `run` exit 2 with nothing started."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from autoscaler.cli import main
from autoscaler.policy.credentials import check_credentials
from autoscaler.policy.loader import load_daemon
from autoscaler.secrets import MAX_SECRET_BYTES

from .test_policy_errors import BASE, PROM

ROOT = Path(__file__).resolve().parents[2]
ENV = "AUTOSCALER_TEST_UNSET_TOKEN_7F3A"


def write(tmp_path: Path, *, token: str, admin: str = "", policy: str = BASE) -> Path:
    (tmp_path / "policies").mkdir(exist_ok=True)
    (tmp_path / "policies" / "chat.yaml").write_text(policy)
    config = tmp_path / "config.yaml"
    config.write_text(
        "policies: policies\n"
        "providers:\n"
        "  neevcloud-prod:\n"
        "    type: neevcloud\n"
        "    base_url: http://127.0.0.1:1\n"
        "    org_id: org-a\n"
        "    project_id: prj-b\n"
        f"    token: {token}\n"
        f"state: {{url: 'sqlite:///{tmp_path}/state.db'}}\n"
        f"http:\n  listen: 127.0.0.1:0\n{admin}"
    )
    return config


def lines(config: Path) -> list[str]:
    loaded, policies = load_daemon(config)
    return [str(e) for e in check_credentials(loaded, policies)]


def test_resolving_credentials_give_no_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV, "t0k3n")
    (tmp_path / "admin").write_text("a-long-enough-admin-token\n")
    config = write(
        tmp_path, token=f"{{env: {ENV}}}", admin=f"  admin_token: {{file: {tmp_path}/admin}}\n"
    )
    assert lines(config) == []


def test_an_unset_variable_names_itself_and_the_profile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV, raising=False)
    config = write(tmp_path, token=f"{{env: {ENV}}}")
    assert lines(config) == [
        f"{config}:8:18: providers.neevcloud-prod.token.env: environment variable {ENV!r} is "
        'not set (provider profile "neevcloud-prod")'
    ]


def test_an_empty_variable_is_missing_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, "  \n")
    config = write(tmp_path, token=f"{{env: {ENV}}}")
    assert lines(config) == [
        f"{config}:8:18: providers.neevcloud-prod.token.env: environment variable {ENV!r} is "
        'empty (provider profile "neevcloud-prod")'
    ]


def test_a_missing_file_and_an_unset_admin_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV, raising=False)
    missing = tmp_path / "nowhere" / "token"
    config = write(tmp_path, token=f"{{file: {missing}}}", admin=f"  admin_token: {{env: {ENV}}}\n")
    assert lines(config) == [
        f"{config}:8:19: providers.neevcloud-prod.token.file: credential file {str(missing)!r} "
        f'not found (looked in: {missing}) (provider profile "neevcloud-prod")',
        f"{config}:12:22: http.admin_token.env: environment variable {ENV!r} is not set "
        "(the admin API)",
    ]


def test_a_policy_source_password_is_checked_at_its_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV + "_SET", "t")
    monkeypatch.delenv(ENV, raising=False)
    policy = BASE.replace(
        f"source: {PROM}",
        f"source: {{type: redis, url: 'redis://h:6379/0', key: q, password: {{env: {ENV}}}}}",
    )
    config = write(tmp_path, token=f"{{env: {ENV}_SET}}", policy=policy)
    [line] = lines(config)
    assert line.startswith(f"{tmp_path}/policies/chat.yaml:6:")
    assert line.endswith(
        f'metrics[0].source.password.env: environment variable {ENV!r} is not set (policy "chat")'
    )


def _lines_in_thread(config: Path, fifo: Path) -> list[str]:
    found: list[str] = []
    thread = threading.Thread(target=lambda: found.extend(lines(config)), daemon=True)
    thread.start()
    thread.join(30)
    if thread.is_alive():
        with contextlib.suppress(OSError):  # release the reader blocked on the FIFO
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail(f"resolving the credentials of {config} hung")
    return found


def test_a_credential_file_is_read_like_a_policy_file(tmp_path: Path) -> None:
    # Resolved at start and on every reload: a FIFO would block the daemon, /dev/zero fill
    # its memory, bytes that are not text raise; each is a located error instead.
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    binary = tmp_path / "binary"
    binary.write_bytes(b"\xff\xfe")
    big = tmp_path / "big"
    big.write_bytes(b"x" * (MAX_SECRET_BYTES + 1))
    profile = ' (provider profile "neevcloud-prod")'
    for file, why in [
        (fifo, f"cannot read credential file '{fifo}': is not a regular file (a FIFO)"),
        (binary, f"credential file '{binary}' is not UTF-8 text"),
        (
            big,
            f"cannot read credential file '{big}': file too large ({MAX_SECRET_BYTES + 1} "
            f"bytes, at most {MAX_SECRET_BYTES})",
        ),
    ]:
        config = write(tmp_path, token=f"{{file: {file}}}")
        assert _lines_in_thread(config, fifo) == [
            f"{config}:8:19: providers.neevcloud-prod.token.file: {why}{profile}"
        ]


def test_validate_config_exits_2_on_a_missing_credential(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(ENV, raising=False)
    config = write(tmp_path, token=f"{{env: {ENV}}}")
    assert main(["validate", "--config", str(config)]) == 2
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and ENV in out[0] and "neevcloud-prod" in out[0]
    monkeypatch.setenv(ENV, "t0k3n")
    assert main(["validate", "--config", str(config)]) == 0
    assert "ok:" in capsys.readouterr().err


def test_validate_config_reports_config_and_policy_errors_exit_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(ENV, "t0k3n")
    policy = BASE.replace("name: chat}", "name: Chat_Bot, create: {region: x}}")
    config = write(tmp_path, token=f"{{env: {ENV}}}", policy=policy)
    config.write_text(
        config.read_text().replace(
            "    type: neevcloud\n", "    type: neevcloud\n    timeuot: 3s\n"
        )
    )
    assert main(["validate", "--config", str(config)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out == [
        f'{config}:5:5: providers.neevcloud-prod.timeuot: unknown key "timeuot" (did you mean '
        '"timeout"?)'
    ]
    config.write_text(config.read_text().replace("    timeuot: 3s\n", ""))
    assert main(["validate", "--config", str(config)]) == 1
    out = capsys.readouterr().out.splitlines()
    chat = tmp_path / "policies" / "chat.yaml"
    assert out[0].startswith(f"{chat}:2:46: deployment.name: must be a DNS-1123 label")
    assert f'{chat}:2:64: deployment.create: missing required key "catalog_id"' in out


def test_run_exits_2_with_nothing_started(tmp_path: Path) -> None:
    config = write(tmp_path, token=f"{{env: {ENV}}}")
    env = {k: v for k, v in __import__("os").environ.items() if k != ENV}
    done = subprocess.run(
        [sys.executable, "-m", "autoscaler", "run", "--config", str(config)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        f"{config}:8:18: providers.neevcloud-prod.token.env: environment variable {ENV!r} is "
        'not set (provider profile "neevcloud-prod")',
    ]
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "state.db").exists()  # nothing started: not even the store
