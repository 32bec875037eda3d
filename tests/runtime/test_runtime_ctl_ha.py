"""`autoscaler status | pause | resume | override | cancel-override | history` against two real
daemons on PostgreSQL: the admin commands reach the leader whichever URL comes first (a standby
answers 409 and the CLI moves on), `/status` shows times as ISO 8601, and `history` pipes
into `replay`."""

from __future__ import annotations

import json
import os
import re
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.runtime.daemon_support import PYTHON, REPO
from tests.runtime.test_runtime_ha_harness import NAME, Group, Member, group, until

pytestmark = pytest.mark.slow

ADMIN = "admin-" + uuid.uuid4().hex
EPOCH_FLOAT = re.compile(r"\b1[0-9]{9}\.[0-9]+\b")


def cli(*args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> Any:
    return subprocess.run(
        [PYTHON, "-m", "autoscaler", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=str(REPO),
        env={**os.environ, "AUTOSCALER_ADMIN_TOKEN": ADMIN, **(env or {})},
    )


def url(member: Member) -> str:
    return f"http://127.0.0.1:{member.port}"


def with_admin_token(g: Group) -> None:
    for member in g.members:
        listen = f"  listen: 127.0.0.1:{member.port}\n"
        text = member.config.read_text()
        assert listen in text
        token = "  admin_token: {env: AUTOSCALER_ADMIN_TOKEN}\n"
        member.config.write_text(text.replace(listen, listen + token))


def counted(metrics: str, outcome: str) -> bool:
    """Some decision of this outcome was counted (a series with a value above zero)."""
    pattern = rf'^autoscaler_decision_outcomes_total{{[^}}]*outcome="{outcome}"[^}}]*}} [1-9]'
    return re.search(pattern, metrics, re.MULTILINE) is not None


def policy_of(status: dict[str, Any] | None) -> dict[str, Any]:
    assert status is not None
    return status["policies"][NAME]  # type: ignore[no-any-return]


def test_ctl_follows_the_leader_and_history_replays(tmp_path: Path) -> None:
    with group(tmp_path, 2) as g:
        with_admin_token(g)
        leader = g.start_all(env={"AUTOSCALER_ADMIN_TOKEN": ADMIN})
        standby = next(m for m in g.members if m is not leader)
        both = ["--url", url(standby), "--url", url(leader)]
        g.load(12)
        until(lambda: g.sim and g.sim.ready_replicas() >= 1, "created from zero")

        shown = cli("status", *both, "--json")
        assert shown.returncode == 0, shown.stderr
        body = json.loads(shown.stdout)
        assert sorted(d["role"] for d in body["daemons"]) == ["leader", "standby"]
        assert body["status"]["role"] == "leader"
        assert not EPOCH_FLOAT.search(shown.stdout), shown.stdout
        table = cli("status", *both)
        assert table.returncode == 0 and f"{url(leader)}: leader" in table.stdout, table
        assert NAME in table.stdout

        # The standby alone refuses (409) and says so; with both URLs the leader takes it.
        alone = cli("pause", NAME, "--url", url(standby))
        assert alone.returncode == 1 and "409" in alone.stderr, alone
        paused = cli("pause", NAME, *both)
        assert paused.returncode == 0, paused.stderr
        assert f"(by {url(leader)})" in paused.stdout
        assert policy_of(leader.status())["paused"] is True

        held = cli("override", NAME, "--replicas", "2", "--for", "10m", *both)
        assert held.returncode == 0, held.stderr
        override = policy_of(leader.status())["override"]
        assert override["replicas"] == 2
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", override["until"])
        assert re.fullmatch(r"(10m|9m\d+s)", override["remaining"]), override
        cancelled = cli("cancel-override", NAME, *both)
        assert cancelled.returncode == 0, cancelled.stderr
        assert policy_of(leader.status())["override"] is None
        assert cli("resume", NAME, *both).returncode == 0
        assert policy_of(leader.status())["paused"] is False
        no_token = cli("pause", NAME, *both, env={"AUTOSCALER_ADMIN_TOKEN": ""})
        assert no_token.returncode == 1 and "no admin token" in no_token.stderr

        # History: kept by the leader in the shared store, served by either daemon.
        until(
            lambda: len(cli("history", NAME, "--url", url(standby)).stdout.splitlines()) >= 10,
            "ten decisions in the history",
        )
        history = cli("history", NAME, "--url", url(standby), "--since", "1h")
        assert history.returncode == 0, history.stderr
        lines = history.stdout.splitlines()
        first = json.loads(lines[0])
        assert set(first) <= {"t", "status", "replicas", "ready_replicas", "metrics"}
        policy_file = g.members[0].folder / "policies" / f"{NAME}.yaml"
        replayed = cli("replay", "--policy", str(policy_file), "--observations", "-",
                       stdin=history.stdout)  # fmt: skip
        assert replayed.returncode == 0, replayed.stderr
        assert len(replayed.stdout.splitlines()) == len(lines)
        decisions = cli("history", NAME, "--url", url(leader), "--decisions").stdout.splitlines()
        assert any(json.loads(d)["action"] != "none" for d in decisions)
        assert any(json.loads(d).get("executed") is True for d in decisions)
        assert cli("history", "nope", "--url", url(leader)).returncode == 1
        table = cli("history", NAME, "--url", url(leader), "--table", "--limit", "3")
        assert table.returncode == 0 and len(table.stdout.splitlines()) == 1 + 2 * 3, table

        # Metrics: a standby's decisions are counted as such, never as executed; the leader
        # explains its decisions (value and target) and says what the deployment is.
        standby_metrics, leader_metrics = standby.metrics(), leader.metrics()
        assert counted(standby_metrics, "standby") and not counted(standby_metrics, "executed")
        assert counted(leader_metrics, "executed") and not counted(leader_metrics, "standby")
        target = f'autoscaler_metric_target{{policy="{NAME}",metric="backlog"}} 5.0'
        assert target in leader_metrics
        assert f'autoscaler_metric_value{{policy="{NAME}",metric="backlog"}}' in leader_metrics
        ready = f'autoscaler_deployment_status{{policy="{NAME}",status="ready"}} 1.0'
        assert ready in leader_metrics
        assert "autoscaler_build_info{" in leader_metrics
        g.check_invariants()
