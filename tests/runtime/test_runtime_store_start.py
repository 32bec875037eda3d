"""Failures explain themselves (issue 14 §5): a store that cannot be opened at start
(PostgreSQL down, wrong user or database, SQLite folder missing) ends `autoscaler run` with
one clear line naming `state.url` (password redacted) and exit 2, not a traceback; a malformed
URL is caught by config validation (`FILE:LINE:COL: state.url: ...`). So does an
`http.listen` address another process holds."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

from tests.runtime.daemon_support import PYTHON, REPO, policy_yaml, write_config
from tests.services import free_port, require_tcp


def _run(
    tmp_path: Path, url: str, http_port: int | None = None
) -> subprocess.CompletedProcess[str]:
    config = write_config(
        tmp_path,
        "http://127.0.0.1:9",
        {"p": policy_yaml("p-store", redis_key="unused")},
        state=url,
        log_level="warning",
        http_port=http_port,
    )
    return subprocess.run(
        [PYTHON, "-m", "autoscaler", "run", "--config", str(config)],
        cwd=str(REPO),
        capture_output=True,
        text=True,
        timeout=120,
    )


def _one_clear_line(done: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert done.returncode == 2, (done.returncode, done.stderr[-3000:])
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    errors = [line for line in done.stderr.splitlines() if "state.url" in line]
    assert len(errors) == 1, done.stderr[-3000:]
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("postgresql://autoscaler@127.0.0.1:{closed}/autoscaler", "cannot connect"),
        ("postgresql://no_such_role_x@127.0.0.1:5432/postgres", "no_such_role_x"),
        ("postgresql://postgres@127.0.0.1:5432/no_such_db_x", "no_such_db_x"),
    ],
)
def test_postgres_that_cannot_be_opened(tmp_path: Path, url: str, needle: str) -> None:
    if "5432" in url:
        require_tcp("PostgreSQL", 5432)
    done = _run(tmp_path, url.format(closed=free_port()))
    _one_clear_line(done, needle)


def test_a_password_never_shows(tmp_path: Path) -> None:
    done = _run(tmp_path, f"postgresql://u:hunter2pw@127.0.0.1:{free_port()}/db")
    line = _one_clear_line(done)
    assert "hunter2pw" not in done.stderr and "***" in line


def test_sqlite_folder_missing(tmp_path: Path) -> None:
    done = _run(tmp_path, f"sqlite:///{tmp_path}/missing/folder/state.db")
    _one_clear_line(done, "does not exist")


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u@127.0.0.1:notaport/db",
        "postgresql://u@127.0.0.1:5432",
        "sqlite://relative.db",
        "postgresql://[::1/db",
    ],
)
def test_malformed_url_is_a_validation_error(tmp_path: Path, url: str) -> None:
    done = _run(tmp_path, url)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert "config.yaml:" in done.stderr and "state.url" in done.stderr, done.stderr
    assert "nothing started" in done.stderr


def test_a_taken_listen_address(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = _run(tmp_path, f"sqlite:///{tmp_path}/state.db", http_port=port)
    assert done.returncode == 2, done.stderr[-3000:]
    assert "Traceback" not in done.stderr and "crashed" not in done.stderr, done.stderr[-3000:]
    [line] = [line for line in done.stderr.splitlines() if "http.listen" in line]
    assert line.startswith(f"{tmp_path / 'config.yaml'}: http.listen: cannot listen on"), line
    assert f"127.0.0.1:{port}" in line
