"""deploy/kubernetes.yaml, parsed and checked for consistency: probes on /healthz and /readyz at
the port the daemon listens on, the config and policies ConfigMaps load as a valid daemon
config and policies, every `{file: NAME}` credential is a key of the Secret mounted at
/run/secrets, the state file lives on the mounted volume, and the PodMonitor scrapes the pod."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from autoscaler.policy.loader import load_daemon_config_text, load_policy_text
from autoscaler.runtime.http import parse_listen

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "deploy" / "kubernetes.yaml"


def documents() -> dict[str, dict[str, Any]]:
    docs = [d for d in yaml.safe_load_all(MANIFEST.read_text()) if d]
    by_kind: dict[str, dict[str, Any]] = {}
    for doc in docs:
        key = doc["kind"] if doc["kind"] != "ConfigMap" else f"ConfigMap/{doc['metadata']['name']}"
        assert key not in by_kind, f"two {key}"
        by_kind[key] = doc
    return by_kind


def container() -> dict[str, Any]:
    [c] = documents()["Deployment"]["spec"]["template"]["spec"]["containers"]
    return c  # type: ignore[no-any-return]


def mounts() -> dict[str, str]:
    """mount path -> the volume's source (configMap/secret/pvc name)."""
    pod = documents()["Deployment"]["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    out = {}
    for m in container()["volumeMounts"]:
        v = volumes[m["name"]]
        source = (
            v.get("configMap", {}).get("name")
            or v.get("secret", {}).get("secretName")
            or v.get("persistentVolumeClaim", {}).get("claimName")
            or "emptyDir"
        )
        out[m["mountPath"]] = source
    return out


def env() -> dict[str, str]:
    return {e["name"]: e["value"] for e in container().get("env", [])}


def test_kinds() -> None:
    assert set(documents()) == {
        "ConfigMap/autoscaler-config",
        "ConfigMap/autoscaler-policies",
        "Secret",
        "PersistentVolumeClaim",
        "Deployment",
        "PodMonitor",
    }


def test_probes_and_port_match_the_listen_address() -> None:
    c = container()
    [port] = c["ports"]
    _, listen_port = parse_listen(env()["AUTOSCALER_LISTEN"])
    assert port["containerPort"] == listen_port == 9464
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": port["name"]}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": port["name"]}
    config = load_daemon_config_text(
        documents()["ConfigMap/autoscaler-config"]["data"]["config.yaml"],
        "/etc/autoscaler/config.yaml",
    )
    host, config_port = parse_listen(config.http.listen)
    assert host == "0.0.0.0" and config_port == listen_port  # reachable from the kubelet


def test_config_policies_and_credentials_are_consistent() -> None:
    docs = documents()
    where = mounts()
    config_path = env()["AUTOSCALER_CONFIG"]
    folder = str(Path(config_path).parent)
    assert where[folder] == "autoscaler-config"
    config = load_daemon_config_text(
        docs["ConfigMap/autoscaler-config"]["data"][Path(config_path).name], config_path
    )
    assert where[config.policies] == "autoscaler-policies"
    for name, text in docs["ConfigMap/autoscaler-policies"]["data"].items():
        for policy in load_policy_text(text, name):
            assert policy.deployment.provider in config.providers
    secret_keys = set(docs["Secret"]["stringData"])
    assert where["/run/secrets"] == docs["Secret"]["metadata"]["name"]
    refs = [p.token for p in config.providers.values()] + [config.http.admin_token]
    for ref in refs:
        assert ref is not None and ref.file in secret_keys, ref
    state_file = config.state.url.removeprefix("sqlite:///")
    state_dir = str(Path(state_file).parent)
    assert where[state_dir] == docs["PersistentVolumeClaim"]["metadata"]["name"]


def test_pod_is_scraped_and_hardened() -> None:
    docs = documents()
    pod = docs["Deployment"]["spec"]["template"]
    labels = pod["metadata"]["labels"]
    monitor = docs["PodMonitor"]["spec"]
    assert monitor["selector"]["matchLabels"].items() <= labels.items()
    [endpoint] = monitor["podMetricsEndpoints"]
    assert endpoint["port"] == container()["ports"][0]["name"] and endpoint["path"] == "/metrics"
    annotations = pod["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(container()["ports"][0]["containerPort"])
    assert docs["Deployment"]["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert pod["spec"]["securityContext"]["runAsUser"] == 10001  # the image's user
    assert container()["securityContext"]["readOnlyRootFilesystem"] is True
    # SQLite: one writer, never two pods at once.
    assert docs["Deployment"]["spec"]["replicas"] == 1
    assert docs["Deployment"]["spec"]["strategy"]["type"] == "Recreate"
