"""The gateway's configuration: policy `gateway:` fields, the `gateway` source, the daemon
config section, and errors in the `FILE:LINE:COL: key.path: message` form."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from autoscaler.policy.errors import ValidationFailed
from autoscaler.policy.loader import load_daemon_config_text, load_policy_text

REPO = Path(__file__).resolve().parents[2]
BASE = (  # a daemon config's head: its policies folder and one complete provider profile
    "policies: p\nproviders: {sim: {type: neevcloud, base_url: 'http://127.0.0.1:1', "
    "org_id: o, project_id: p, token: {env: AUTOSCALER_TEST_SIM_TOKEN}}}\n"
)

POLICY = """name: {name}
deployment:
  provider: sim
  name: {name}-dep
  create: {{catalog_id: x, region: r, gpu_config_id: g, plan_id: p}}
replicas: {{min: 0, max: 2}}
{gateway}metrics:
  - name: demand
    source: {source}
    target: {{type: average_value, value: 4}}
scale_to_zero: {{after: 60s, activation: [{{metric: demand}}]}}
"""


def policy(name: str, gateway: str, source: str) -> str:
    return POLICY.format(name=name, gateway=gateway, source=source)


def test_gateway_models_fill_the_source_and_bounds_are_kept() -> None:
    [p] = load_policy_text(
        policy(
            "chat",
            "gateway: {model: [chat, chat-xl], max_held: 5, max_hold: 2m}\n",
            "{type: gateway, signal: arrival_rate, window: 30s}",
        )
    )
    assert p.gateway is not None and p.gateway.models == ("chat", "chat-xl")
    assert (p.gateway.max_held, p.gateway.max_hold) == (5, 120.0)
    source = p.metrics[0].source
    assert source.type == "gateway" and source.models == ("chat", "chat-xl")
    assert source.window == 30.0
    [q] = load_policy_text(policy("q", "gateway: {model: q}\n", "{type: gateway, signal: held}"))
    assert q.metrics[0].source.window == q.interval == 15.0  # default: the policy's interval


def test_errors_name_where() -> None:
    text = (
        policy("a", "", "{type: gateway, signal: held}")
        + "---\n"
        + policy("b", "gateway: {model: m}\n", "{type: gateway, signal: held}")
        + "---\n"
        + policy("c", "gateway: {model: m}\n", "{type: gateway, signal: held}")
        + "---\n"
        + policy("d", "gateway: {model: n}\n", "{type: gateway, signal: nope}")
    )
    with pytest.raises(ValidationFailed) as failed:
        load_policy_text(text, "p.yaml")
    lines = "\n".join(str(e) for e in failed.value.errors)
    assert 'metrics[0].source: a gateway source needs "model"' in lines
    assert "metrics[0].source.signal:" in lines and "arrival_rate" in lines
    assert 'gateway.model: model "m" is already routed by policy "b"' in lines
    assert all(line.startswith("p.yaml:") for line in lines.splitlines())


def test_daemon_config_gateway_section() -> None:
    config = load_daemon_config_text(
        BASE + "gateway: {listen: 127.0.0.1:8081, api_keys: [{env: K}], max_hold: 30s}\n"
    )
    assert config.gateway is not None
    assert config.gateway.listen == "127.0.0.1:8081" and config.gateway.max_hold == 30.0
    assert config.gateway.listen.startswith("127.0.0.1")  # loopback unless told otherwise
    with pytest.raises(ValidationFailed) as failed:
        load_daemon_config_text(BASE + "gateway: {listen: nowhere, api_keys: []}\n", "c.yaml")
    lines = "\n".join(str(e) for e in failed.value.errors)
    assert "gateway.listen:" in lines and "gateway.api_keys:" in lines


def test_gateway_section_bounds_slow_clients_and_connections() -> None:
    keys = "api_keys: [{env: K}]"
    config = load_daemon_config_text(
        BASE + f"gateway: {{{keys}, header_timeout: 3s, max_connections: 4000}}\n"
    )
    assert config.gateway is not None
    assert (config.gateway.header_timeout, config.gateway.max_connections) == (3.0, 4000)
    default = load_daemon_config_text(BASE + f"gateway: {{{keys}}}\n").gateway
    assert default is not None and default.max_connections == 1024
    with pytest.raises(ValidationFailed) as failed:
        load_daemon_config_text(
            BASE + f"gateway: {{{keys}, header_timeout: 0s, max_connections: 0}}\n", "c.yaml"
        )
    lines = "\n".join(str(e) for e in failed.value.errors)
    assert "c.yaml:3:" in lines
    assert "gateway.header_timeout:" in lines and "gateway.max_connections:" in lines


def _start(
    tmp_path: Path, command: str, extra: str, env: dict[str, str] | None = None
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """`autoscaler COMMAND --config` on BASE + `extra` with one gateway-routed policy."""
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "chat.yaml").write_text(
        policy("chat", "gateway: {model: chat}\n", "{type: gateway, signal: held}")
    )
    config = tmp_path / "c.yaml"
    config.write_text(BASE + extra)
    result = subprocess.run(
        [sys.executable, "-m", "autoscaler", command, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env=env,
    )
    return config, result


def test_gateway_command_needs_a_gateway_section(tmp_path: Path) -> None:
    _, result = _start(tmp_path, "gateway", "")
    assert result.returncode == 2
    assert "gateway: missing" in result.stderr


def test_gateway_command_on_a_taken_address_says_so(tmp_path: Path) -> None:
    env = {**os.environ, "AUTOSCALER_TEST_GW_KEY": "gw-key-0123", "AUTOSCALER_TEST_SIM_TOKEN": "t"}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        keys = "api_keys: [{env: AUTOSCALER_TEST_GW_KEY}]"
        gateway = f"gateway: {{listen: '127.0.0.1:{port}', {keys}}}\n"
        config, result = _start(tmp_path, "gateway", gateway, env)
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert result.stderr.strip() == (
        f"{config}: gateway.listen: cannot listen on '127.0.0.1:{port}': "
        "[Errno 98] Address already in use"
    )


def test_gateway_command_refuses_a_credential_it_cannot_read(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "AUTOSCALER_TEST_SIM_TOKEN"}
    config, result = _start(
        tmp_path,
        "gateway",
        "gateway: {api_keys: [{env: AUTOSCALER_TEST_GW_KEY}]}\n",
        {**env, "AUTOSCALER_TEST_GW_KEY": "gw-key-0123456789"},
    )
    assert result.returncode == 2, result.stderr[-3000:]
    assert result.stderr.strip() == (
        f"{config}:2:107: providers.sim.token.env: environment variable "
        "'AUTOSCALER_TEST_SIM_TOKEN' is not set (provider profile \"sim\")"
    )


def test_run_refuses_a_gateway_key_it_cannot_read(tmp_path: Path) -> None:
    _, result = _start(
        tmp_path,
        "run",
        f"state: {{url: 'sqlite:///{tmp_path}/s.db'}}\n"
        "gateway: {api_keys: [{env: AUTOSCALER_TEST_NO_SUCH_KEY}]}\n",
    )
    assert result.returncode == 2, result.stderr
    assert "gateway.api_keys[0]" in result.stderr
    assert "AUTOSCALER_TEST_NO_SUCH_KEY" in result.stderr


def test_the_unit_gives_the_gateway_its_descriptors() -> None:
    """LimitNOFILE covers the daemon's and the gateway's inbound caps plus one upstream
    connection per gateway request, with room for providers, sources and the store."""
    from autoscaler.policy.model import GatewayConfig, HttpConfig

    unit = (REPO / "deploy" / "autoscaler.service").read_text()
    [limit] = [
        int(line.split("=", 1)[1]) for line in unit.splitlines() if line.startswith("LimitNOFILE=")
    ]
    needed = HttpConfig().max_connections + 2 * GatewayConfig().max_connections
    assert limit >= 4 * needed, (limit, needed)
