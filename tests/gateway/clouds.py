"""Per-provider pieces of the gateway's end-to-end tests against the simulators
(`autoscaler/fakecloud`), whose deployments serve a fake vLLM once ready.

What each provider documents about inference, and so what the gateway must send upstream:
- NeevCloud (seed 001): `{endpoint_url}/chat/completions`, an `sk-nc-*` inference key that is
  not the API access token, `model` = the deployment's `model_id`.
- NetMind (seed 003): `endpoint_metadata.endpoint_url`, one bearer token for API and inference
  (a profile's `inference.token` overrides it), the client's model name (the container serves
  what its command says; the simulator accepts any).
- Nebius-style (seed 004): one shared `/v1` base on the API host, one bearer token for both
  (overridable), `model` = the endpoint's `routing_key`.

`Recorder` wraps a simulator app to see each inference request as it arrived (path, headers,
body) and every API call, and can hold a streamed answer after its first chunk (`gate`), which
proves the gateway passes chunks on without buffering.

Requests sent while a deployment scales must be answered on its last route. Were that broken,
the gateway would hold them (the deployment looks not ready) until the policy's `max_hold`
(120 s), and a test would learn it only then. So they carry `MID_SCALE_HEADERS`: the
gateway's own per-request bound (`X-Scale-Up-Timeout`, which only shortens a hold) ends such a
hold after `MID_SCALE_HOLD` seconds with a 503 `hold_timeout`, which `mid_scale_failure`
names; the client's `MID_SCALE_TIMEOUT` catches anything else that keeps them waiting. A
healthy one is answered at once (held at most for one lookup of the deployment).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.gateway.support import AUTH
from tests.providers.helpers import SPECS
from tests.runtime.daemon_support import TOKEN

INFERENCE_PATHS = ("/chat/completions", "/completions", "/embeddings", "/models")

MID_SCALE_HOLD = 20.0  # seconds a request sent mid-scale may be held (see the module header)
MID_SCALE_TIMEOUT = MID_SCALE_HOLD + 20.0  # seconds the client waits for its answer
MID_SCALE_HEADERS = {**AUTH, "X-Scale-Up-Timeout": f"{MID_SCALE_HOLD:g}"}  # not forwarded


def mid_scale_failure(model: str, status: int | None, text: str) -> str:
    """The assertion message for a request sent mid-scale that got no 200 (`status` None: no
    answer within `MID_SCALE_TIMEOUT`)."""
    if status is None:
        return (
            f"{model!r}: no answer within {MID_SCALE_TIMEOUT:g} s while its deployment scaled,"
            f" although the gateway may hold it only {MID_SCALE_HOLD:g} s: {text}"
        )
    if status == 503 and '"hold_timeout"' in text:
        return (
            f"{model!r} was HELD while its deployment scaled (refused after the test's"
            f" {MID_SCALE_HOLD:g} s hold bound) instead of answered on its last route: the"
            f" gateway found no route mid-scale (InferenceRoutes keep-last-route?): {text}"
        )
    return (
        f"{model!r} was not answered on its last route while its deployment scaled: {status} {text}"
    )


@dataclass(frozen=True)
class Cloud:
    kind: str
    spec: dict[str, Any]
    inference_key: str  # what the simulator's inference takes when the profile names a key
    list_path: str  # the provider API's list of deployments
    list_key: str  # where that answer keeps them

    def provider_yaml(self, sim_url: str, folder: Path, *, named_key: bool = True) -> str:
        """The `providers.sim` section; `named_key`: with an `inference.token` (a file)."""
        (folder / "token").write_text(TOKEN)
        lines = [
            "  sim:",
            f"    type: {self.kind}",
            f"    base_url: {sim_url}",
            f"    token: {{file: {folder / 'token'}}}",
            "    timeout: 2s",
            "    max_retries: 1",
            "    wait_ready_timeout: 60s",
        ]
        if self.kind == "neevcloud":
            lines += ["    org_id: org-t", "    project_id: prj-t"]
        if named_key:
            (folder / "inference").write_text(self.inference_key)
            lines.append(f"    inference: {{token: {{file: {folder / 'inference'}}}}}")
        return "\n".join(lines) + "\n"

    def sim_key(self, named_key: bool) -> str | None:
        """The simulator's `inference_key` setting (None: its default, the API token, or the
        derived `sk-nc-*` key for NeevCloud)."""
        return self.inference_key if named_key and self.kind != "neevcloud" else None

    async def deployed(self, sim_url: str, name: str) -> dict[str, Any]:
        """The deployment as the provider's API shows it (the one live item named `name`)."""
        async with httpx.AsyncClient(timeout=10) as client:
            r = await client.get(
                sim_url + self.list_path, headers={"Authorization": f"Bearer {TOKEN}"}
            )
        r.raise_for_status()
        items = [i for i in r.json()[self.list_key] if i["name"] == name]
        assert len(items) == 1, items
        return items[0]  # type: ignore[no-any-return]

    def upstream_base(self, item: dict[str, Any], sim_url: str) -> str:
        """Where the provider says the deployment `item` answers OpenAI-compatible requests."""
        if self.kind == "neevcloud":
            return str(item["endpoint_url"])
        if self.kind == "netmind":
            return str(item["endpoint_metadata"]["endpoint_url"])
        return sim_url + "/v1"

    def upstream_model(self, item: dict[str, Any], client_model: str) -> str:
        """The model name the provider expects in requests to the deployment `item`."""
        if self.kind == "neevcloud":
            return str(item["model_id"])
        if self.kind == "nebius":
            return str(item["routing_key"])
        return client_model


CLOUDS = {
    "neevcloud": Cloud(
        "neevcloud",
        SPECS["neevcloud"],
        f"sk-nc-{TOKEN}",
        "/api/v1beta1/orgs/org-t/projects/prj-t/aimodels",
        "items",
    ),
    "netmind": Cloud(
        "netmind",
        SPECS["netmind"],
        "nm-inference-key-for-gateway-tests",
        "/v1/inference-service",
        "service_list",
    ),
    "nebius": Cloud(
        "nebius",
        SPECS["nebius"],
        "nb-inference-key-for-gateway-tests",
        "/v0/dedicated_endpoints",
        "endpoints",
    ),
}


@dataclass
class Recorder:
    """A simulator app that records what reaches it; see the module header."""

    app: Any
    inference: list[dict[str, Any]] = field(default_factory=list)
    api: list[tuple[str, str]] = field(default_factory=list)  # (method, path) of the rest
    gate: asyncio.Event | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if not scope["path"].endswith(INFERENCE_PATHS):
            self.api.append((scope["method"], scope["path"]))
            await self.app(scope, receive, send)
            return
        seen: dict[str, Any] = {"path": scope["path"], "headers": scope["headers"], "body": b""}
        self.inference.append(seen)
        chunks = 0

        async def receiving() -> Any:
            message = await receive()
            seen["body"] += message.get("body", b"")
            return message

        async def sending(message: dict[str, Any]) -> None:
            nonlocal chunks
            await send(message)
            if message["type"] == "http.response.body" and message.get("more_body"):
                chunks += 1
                if chunks == 1 and self.gate is not None:
                    await self.gate.wait()

        await self.app(scope, receiving, sending)


def policy_yaml(
    spec: dict[str, Any],
    models: tuple[str, ...] = ("chat",),
    *,
    min_replicas: int = 0,
    interval: str = "60s",
    on_failure: str = "report",
) -> str:
    """The `chat` policy serving `models` with deployment `chat-gw` created from `spec`. At
    zero by default, where its only way back within a test's bound is the gateway's activation
    (interval 60 s). `on_failure`: its `on_deployment_failure.action`."""
    zero = """scale_to_zero:
  after: 10m
  activation: [{metric: demand, threshold: 0}]
"""
    return f"""name: chat
deployment: {{provider: sim, name: chat-gw, create: {json.dumps(spec)}}}
replicas: {{min: {min_replicas}, max: 2}}
interval: {interval}
gateway: {{model: [{", ".join(models)}], max_hold: 120s}}
on_deployment_failure: {{action: {on_failure}}}
metrics:
  - name: demand
    source: {{type: gateway, signal: concurrency, window: 5s}}
    target: {{type: average_value, value: 4}}
{zero if min_replicas == 0 else ""}"""
