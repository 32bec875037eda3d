"""The files `autoscaler demo` generates: the three example policies and the daemon config of
the embedded default (every duration divided by the demo's `speed`). Pure text, no I/O but
`write_demo_files`; `autoscaler.demo.cli` runs the story around them."""

from __future__ import annotations

from pathlib import Path

CHAT_MODEL = "meta-llama/Llama-3.1-8B-Instruct"
BATCH_MODEL = "meta-llama/Llama-3.1-70B-Instruct"
ASSISTANT_MODEL = "assistant"


def _seconds(value: float) -> str:
    return f"{round(value, 3):g}s"


def _create_spec(catalog_id: str) -> str:
    return (
        f"    catalog_id: {catalog_id}\n"
        "    region: in-west-1\n"
        "    gpu_config_id: h100-80gb\n"
        "    gpu_count: 1\n"
        "    plan_id: ondemand-h100\n"
    )


def _metrics_yaml(gateway_url: str, model: str) -> str:
    def source(metric: str) -> str:
        return (
            f'{{type: prometheus, url: "{gateway_url}", metric: "{metric}", '
            f'labels: {{model_name: "{model}"}}, timeout: 2s}}'
        )

    return (
        "metrics:\n"
        "  - name: waiting\n"
        f"    source: {source('vllm:num_requests_waiting')}\n"
        "    target: {type: average_value, value: 2}\n"
        "  - name: running\n"
        f"    source: {source('vllm:num_requests_running')}\n"
        "    target: {type: average_value, value: 3}\n"
    )


def policy_texts(gateway_url: str, speed: float) -> dict[str, str]:
    """The three example policies, every duration divided by `speed`.

    Long because it is three YAML documents written out literally, read top to bottom like
    the files it generates.
    """

    def s(value: float) -> str:
        return _seconds(value / speed)

    chat = (
        "# Interactive chat: always at least one replica; follows the gateway's queue.\n"
        "name: chat\n"
        "deployment:\n"
        "  provider: sim\n"
        "  name: chat-demo\n"
        "  create:\n"
        f"{_create_spec('meta-llama-Llama-3.1-8B-Instruct')}"
        "replicas: {min: 1, max: 6}\n"
        f"interval: {s(1)}\n"
        f"{_metrics_yaml(gateway_url, CHAT_MODEL)}"
        "behavior:\n"
        "  scale_up:\n"
        "    stabilization_window: 0s\n"
        f"    policies: [{{type: replicas, value: 4, period: {s(1)}}}]\n"
        "  scale_down:\n"
        f"    stabilization_window: {s(6)}\n"
        f"    policies: [{{type: percent, value: 50, period: {s(2)}}}]\n"
    )
    batch = (
        "# Batch jobs: scaled to zero (deleted) when idle, recreated when work arrives.\n"
        "name: batch\n"
        "deployment:\n"
        "  provider: sim\n"
        "  name: batch-demo\n"
        "  create:\n"
        f"{_create_spec('meta-llama-Llama-3.1-70B-Instruct')}"
        "replicas: {min: 0, max: 3}\n"
        f"interval: {s(1)}\n"
        f"{_metrics_yaml(gateway_url, BATCH_MODEL)}"
        "behavior:\n"
        "  scale_up:\n"
        "    stabilization_window: 0s\n"
        f"    policies: [{{type: replicas, value: 4, period: {s(1)}}}]\n"
        "  scale_down:\n"
        f"    stabilization_window: {s(4)}\n"
        f"    policies: [{{type: percent, value: 100, period: {s(1)}}}]\n"
        "scale_to_zero:\n"
        f"  after: {s(20)}\n"
        "  activation:\n"
        "    - {metric: waiting, threshold: 0}\n"
        "    - {metric: running, threshold: 0}\n"
    )
    assistant = (
        "# A chat model behind the gateway: at zero until a request arrives; the request is\n"
        "# held while the deployment is recreated, then answered.\n"
        "name: assistant\n"
        "deployment:\n"
        "  provider: sim\n"
        "  name: assistant-demo\n"
        "  create:\n"
        f"{_create_spec('meta-llama-Llama-3.1-8B-Instruct')}"
        "replicas: {min: 0, max: 2}\n"
        f"interval: {s(5)}\n"
        f"gateway: {{model: {ASSISTANT_MODEL}, max_hold: {s(60)}}}\n"
        "metrics:\n"
        "  - name: demand\n"
        f"    source: {{type: gateway, signal: concurrency, window: {s(2)}}}\n"
        "    target: {type: average_value, value: 4}\n"
        "scale_to_zero:\n"
        f"  after: {s(10)}\n"
        "  activation:\n"
        "    - {metric: demand, threshold: 0}\n"
    )
    return {"chat": chat, "batch": batch, "assistant": assistant}


def write_demo_files(
    folder: Path,
    *,
    sim_url: str,
    gateway_url: str,
    http_port: int,
    speed: float,
    token: str,
    gateway_port: int | None = None,
    client_key: str = "",
) -> Path:
    policies = folder / "policies"
    policies.mkdir(parents=True, exist_ok=True)
    for name, text in policy_texts(gateway_url, speed).items():
        (policies / f"{name}.yaml").write_text(text)
    token_file = folder / "neevcloud_token"
    token_file.write_text(token + "\n")
    token_file.chmod(0o600)
    inference_file = folder / "neevcloud_inference_key"
    inference_file.write_text(f"sk-nc-{token}\n")  # the simulator's sk-nc-* inference key
    inference_file.chmod(0o600)
    key_file = folder / "gateway_client_key"
    key_file.write_text(client_key + "\n")
    key_file.chmod(0o600)
    gateway = (
        "gateway:\n"
        f"  listen: 127.0.0.1:{gateway_port}\n"
        f"  api_keys: [{{file: {key_file}}}]\n"
        f"  poll_interval: {_seconds(0.5 / speed)}\n"
        if gateway_port is not None
        else ""
    )
    config = folder / "config.yaml"
    config.write_text(
        "# Generated by `autoscaler demo`: the daemon config of the embedded default.\n"
        "policies: policies\n"
        "providers:\n"
        "  sim:\n"
        "    type: neevcloud\n"
        f"    base_url: {sim_url}\n"
        "    org_id: org-demo\n"
        "    project_id: prj-demo\n"
        f"    token: {{file: {token_file}}}\n"
        f"    inference: {{token: {{file: {inference_file}}}}}\n"
        "    timeout: 5s\n"
        "    max_retries: 2\n"
        f"    wait_ready_timeout: {_seconds(60 / speed)}\n"
        "state:\n"
        f"  url: sqlite:///{folder / 'state.db'}\n"
        "http:\n"
        f"  listen: 127.0.0.1:{http_port}\n"
        "log:\n"
        "  format: json\n"
        "  level: info\n"
        f"zero_poll_interval: {_seconds(1 / speed)}\n"
        "dry_run: false\n"
        "shutdown_timeout: 10s\n"
        f"{gateway}"
    )
    return config
