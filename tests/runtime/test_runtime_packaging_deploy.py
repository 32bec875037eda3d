"""deploy/: the systemd unit (systemd-analyze verify), the example config, the Grafana dashboard
(every query names metrics the daemon exports, and parses as PromQL)."""

from __future__ import annotations

import configparser
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from autoscaler.runtime.cli_run import EXIT_CONFIG
from autoscaler.runtime.metrics import METRIC_NAMES, Metrics
from tests.services import require

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
UNIT = DEPLOY / "autoscaler.service"
DASHBOARD = DEPLOY / "grafana-dashboard.json"


def unit_items() -> list[tuple[str, str, str]]:
    """(section, key, value) for every assignment, repeated keys kept."""
    items, section = [], ""
    for raw in UNIT.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        items.append((section, key.strip(), value.strip()))
    return items


def unit_value(key: str, section: str = "Service") -> list[str]:
    return [v for s, k, v in unit_items() if s == section and k == key]


def test_unit_declares_notify_watchdog_and_hardening() -> None:
    assert unit_value("Type") == ["notify"]
    assert unit_value("WatchdogSec") == ["30"]
    assert unit_value("ExecStart") == [
        "/usr/local/bin/autoscaler run --config /etc/autoscaler/config.yaml"
    ]
    assert unit_value("ExecReload") == ["/bin/kill -HUP $MAINPID"]
    assert unit_value("Restart") == ["on-failure"]
    # `autoscaler run` exits 2 on config errors (autoscaler.runtime.cli_run.EXIT_CONFIG)
    assert unit_value("RestartPreventExitStatus") == [str(EXIT_CONFIG)]
    assert unit_value("DynamicUser") == ["yes"]
    assert unit_value("StateDirectory") == ["autoscaler"]
    credentials = dict(v.split(":", 1) for v in unit_value("LoadCredential"))
    assert set(credentials) == {"neevcloud_token", "admin_token"}
    for key, expected in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "ProtectKernelTunables": "yes",
        "ProtectKernelModules": "yes",
        "ProtectKernelLogs": "yes",
        "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
        "LockPersonality": "yes",
        "RestrictNamespaces": "yes",
        "CapabilityBoundingSet": "",
    }.items():
        assert unit_value(key) == [expected], key
    assert "@system-service" in unit_value("SystemCallFilter")


def test_unit_gives_descriptors_well_beyond_the_connection_cap() -> None:
    from autoscaler.policy.model import HttpConfig

    (nofile,) = unit_value("LimitNOFILE")
    assert int(nofile) >= 8 * HttpConfig().max_connections


def test_unit_credentials_match_the_example_config() -> None:
    config = yaml.safe_load((DEPLOY / "config.yaml").read_text())
    names = {v.split(":", 1)[0] for v in unit_value("LoadCredential")}
    refs = {config["http"]["admin_token"]["file"]}
    refs |= {p["token"]["file"] for p in config["providers"].values() if "token" in p}
    assert refs == names
    assert config["state"]["url"] == "sqlite:////var/lib/autoscaler/state.db"


def test_credentials_directory_lookup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What LoadCredential= provides, resolved the way the daemon resolves {file: NAME}."""
    from autoscaler.policy.model import SecretRef
    from autoscaler.secrets import resolve

    (tmp_path / "neevcloud_token").write_text("tok-from-systemd\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    secret = resolve(SecretRef(file="neevcloud_token"))
    assert secret is not None and secret.reveal() == "tok-from-systemd"
    assert "tok-from-systemd" not in repr(secret)


def test_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    # scripts/test.sh installs it (package systemd): under CI its absence fails.
    require(analyze is not None, "systemd-analyze (package systemd)")
    assert analyze is not None
    # verify checks that ExecStart exists: point it at a launcher for this checkout.
    launcher = tmp_path / "autoscaler"
    launcher.write_text(f'#!/bin/sh\nexec {sys.executable} -m autoscaler "$@"\n')
    launcher.chmod(0o755)
    unit = tmp_path / "autoscaler.service"
    unit.write_text(UNIT.read_text().replace("/usr/local/bin/autoscaler", str(launcher)))
    result = subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    # verify warns about unknown keys but still exits 0: any output about the unit fails.
    complaints = [
        line for line in (result.stdout + result.stderr).splitlines() if unit.name in line
    ]
    assert result.returncode == 0, result.stderr
    assert complaints == []


def test_unit_parses_as_ini() -> None:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(UNIT.read_text())
    assert parser.sections() == ["Unit", "Service", "Install"]
    assert parser["Install"]["WantedBy"] == "multi-user.target"


# --- Grafana dashboard -------------------------------------------------------------------


def exported_series_names() -> set[str]:
    """Every series name the daemon can export (histograms with _bucket/_sum/_count)."""
    m = Metrics()
    m.replicas("p", 1, 1)
    m.decision("p", "none", ("x",))
    m.evaluation("p", 0.1, 0.1)
    m.scale_from_zero("p", 1.0)
    m.dry_run("p", False)
    m.provider_request("x", "get", 200, 0.1)
    m.source_read("p", "m", "redis", 0.1, ok=True)
    m.leadership(True, 1)
    m.outcome("p", "scale", "executed")
    m.observed("p", "ready", 1, {"m": 2.0}, {"m": 5.0}, 3.5)
    names = set()
    for family in text_string_to_metric_families(generate_latest(m.registry).decode()):
        names |= {s.name for s in family.samples if not s.name.endswith("_created")}
    return names


def dashboard_exprs() -> list[str]:
    board = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    exprs += [a["expr"] for a in board["annotations"]["list"] if "expr" in a]
    exprs += [
        v["query"]["query"] for v in board["templating"]["list"] if isinstance(v.get("query"), dict)
    ]
    return exprs


def test_dashboard_queries_name_only_exported_metrics() -> None:
    exported = exported_series_names()
    used: set[str] = set()
    for expr in dashboard_exprs():
        names = set(re.findall(r"\b(?:autoscaler|process|python)_[a-z_]+", expr))
        # process_* exists in every job: a query must pin it to the daemon's series.
        assert any(n.startswith("autoscaler_") for n in names), f"not the daemon's: {expr}"
        unknown = names - exported
        assert not unknown, f"{sorted(unknown)} in {expr!r} are not exported by metrics.py"
        used |= names
    # Every family the daemon exports has a panel.
    families = {
        re.sub(r"_(bucket|sum|count)$", "", n) if n not in METRIC_NAMES else n for n in used
    }
    assert set(METRIC_NAMES) <= families
    assert {"process_cpu_seconds_total", "process_resident_memory_bytes"} <= used


def test_dashboard_shape() -> None:
    board = json.loads(DASHBOARD.read_text())
    assert board["uid"] and board["title"]
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    titles = " ".join(p["title"] for p in board["panels"]).lower()
    for topic in (
        "desired vs current",
        "reason",
        "lag p99",
        "provider",
        "source",
        "zero",
        "leader",
        "value vs target",
        "what it costs",
        "deployment status",
        "outcomes",
        "build",
    ):
        assert topic in titles
    for panel in board["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24


def test_dashboard_scopes_every_query_to_job_instance_and_the_leader() -> None:
    """Several daemons scrape into one Prometheus: every query is scoped by the `job` and
    `instance` variables, and a per-policy query shows only the leader's series (the
    `leader` variable: 1 leader only, 0 all daemons) or leaves standby decisions out."""
    board = json.loads(DASHBOARD.read_text())
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert {"job", "instance", "leader", "policy"} <= set(variables)
    assert {o["value"] for o in variables["leader"]["options"]} == {"0", "1"}
    assert "$job" in variables["instance"]["query"]["query"]
    for expr in dashboard_exprs():
        if expr.startswith("label_values("):
            continue
        for selector in re.findall(r"\b(?:autoscaler|process)_[a-z_]+(\{[^}]*\})?", expr):
            assert 'job=~"$job"' in selector and 'instance=~"$instance"' in selector, expr
        if "$policy" in expr:
            leader_only = "and on (job, instance) (autoscaler_is_leader{" in expr
            assert leader_only or 'outcome!="standby"' in expr, expr


def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    require(promtool is not None, "promtool (package prometheus)")
    assert promtool is not None
    rules = []
    for i, expr in enumerate(dashboard_exprs()):
        if expr.startswith("label_values("):
            continue  # a Grafana function, not PromQL
        concrete = expr.replace("$__rate_interval", "5m").replace("$policy", ".*")
        concrete = concrete.replace("$job", ".*").replace("$instance", ".*")
        concrete = concrete.replace("$leader", "1")
        rules.append({"record": f"dashboard:query_{i}", "expr": concrete})
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_example_config_loads_and_resolves_systemd_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from autoscaler.policy.loader import load_daemon_config
    from autoscaler.secrets import resolve

    config = load_daemon_config(DEPLOY / "config.yaml")
    assert config.http.listen == "127.0.0.1:9464"
    assert config.log.format == "json"
    for name in ("neevcloud_token", "admin_token"):
        (tmp_path / name).write_text(f"value-of-{name}\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    admin = resolve(config.http.admin_token)
    assert admin is not None and admin.reveal() == "value-of-admin_token"
    for profile in config.providers.values():
        token = resolve(profile.token)
        assert token is not None and token.reveal() == "value-of-neevcloud_token"
