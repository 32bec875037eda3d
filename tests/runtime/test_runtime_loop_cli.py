"""`autoscaler run` as a process: config errors (every line printed, exit 2, nothing started)
and SIGTERM during an in-flight provider action (exit 0 within the deadline, the action's
intent kept in the store, reconciled by the next start).
"""

from __future__ import annotations

import signal
import subprocess
import uuid
from pathlib import Path

import anyio
import pytest
import redis

from autoscaler.store.sqlite import SQLiteStore
from tests.runtime.daemon_support import (
    PYTHON,
    REPO,
    policy_yaml,
    sim_server,
    start_daemon_process,
    wait_for,
    write_config,
)
from tests.services import require_tcp


def test_config_errors_exit_2_with_every_line(tmp_path: Path) -> None:
    bad = policy_yaml("bad-one", redis_key="k").replace("max: 4", "max: -3")
    bad = bad.replace("interval: 0.5s", "interval: soon")
    config = write_config(tmp_path, "http://127.0.0.1:9", {"bad": bad})
    result = subprocess.run(
        [PYTHON, "-m", "autoscaler", "run", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=str(REPO),
    )
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if "bad.yaml:" in line]
    assert len(lines) >= 2, result.stderr
    for line in lines:
        file, row, col, _rest = line.split(":", 3)
        assert file.endswith("bad.yaml") and row.isdigit() and col.isdigit(), line
    assert any("replicas.max" in line for line in lines)
    assert any("interval" in line for line in lines)
    assert not (tmp_path / "state.db").exists(), "nothing may start on a config error"


def _pending(db: Path) -> list[str]:
    async def read() -> list[str]:
        store = SQLiteStore(str(db))
        await store.open()
        try:
            return [i.kind for i in await store.pending_intents()]
        finally:
            await store.close()

    return anyio.run(read)


@pytest.mark.slow
def test_sigterm_mid_action_keeps_intent_and_exits_0(tmp_path: Path) -> None:
    require_tcp("Redis", 6379)
    r = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    key = f"test:shutdown:{uuid.uuid4().hex}"
    log = tmp_path / "daemon.log"
    with sim_server(provision_seconds=0.2) as sim:
        sim.create("held")
        config = write_config(
            tmp_path,
            sim.url,
            {"held": policy_yaml("held", redis_key=key, min_replicas=1, interval="0.3s")},
            extra="",
        )
        text = config.read_text().replace("shutdown_timeout: 5s", "shutdown_timeout: 0.5s")
        config.write_text(text)
        # The next scale request hangs for 4 s at the provider: SIGTERM arrives mid-call.
        sim.faults(script={"kind": "latency", "method": "PUT", "path": "/scale", "seconds": 4})
        proc = start_daemon_process(config, log=log)
        try:
            r.rpush(key, *range(20))
            wait_for(
                lambda: any(q["method"] == "PUT" for q in sim.app.state.sim.requests),
                30,
                "scale request sent",
            )
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(20) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        text = log.read_text()
        assert '"shutdown_deadline_passed"' in text and '"stopped"' in text
        assert _pending(tmp_path / "state.db") == ["scale"]

        # The next start reconciles the intent before anything else, then scales as usual.
        proc = start_daemon_process(config, log=log)
        try:
            wait_for(
                lambda: (d := sim.current("held")) and d[0]["replicas"] == 4,
                30,
                "scaled after restart",
            )
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(20) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
            r.delete(key)
        assert _pending(tmp_path / "state.db") == []
        assert '"intent_reconciled"' in log.read_text()
