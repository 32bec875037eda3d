"""Shared parts of the daemon tests (loop, crash, reload, e2e): a simulator (NeevCloud unless
told) served over real HTTP by uvicorn in a background thread, config/policy file writers, and
waiting helpers that poll a condition with a generous bound (never a timed assertion).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from autoscaler.fakecloud import create_app
from tests.services import free_port

TOKEN = "sim-token-for-tests"
REPO = Path(__file__).resolve().parents[2]
PYTHON = str(REPO / ".venv" / "bin" / "python")

CREATE_SPEC = {
    "catalog_id": "meta-llama-Llama-3.1-8B-Instruct",
    "region": "in-west-1",
    "gpu_config_id": "h100-80gb",
    "gpu_count": 1,
    "plan_id": "ondemand-h100",
    "config": {"max_model_len": 8192},
}


class SimServer:
    """A simulator (NeevCloud unless `provider` says) on a free loopback port, in its own
    thread and loop."""

    def __init__(
        self, provision_seconds: float = 0.5, provider: str = "neevcloud", **kw: Any
    ) -> None:
        self.app = create_app(provider, token=TOKEN, provision_seconds=provision_seconds, **kw)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_level="error", lifespan="off"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.run(self.server.serve())

    def start(self) -> SimServer:
        self.thread.start()
        wait_for(lambda: self.server.started, 20, "simulator started")
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)

    def snapshot(self) -> dict[str, Any]:
        return httpx.get(f"{self.url}/_sim/deployments", timeout=10).json()  # type: ignore[no-any-return]

    def current(self, name: str) -> list[dict[str, Any]]:
        snap = self.snapshot()
        current = set(snap["current"])
        return [d for d in snap["deployments"] if d["name"] == name and d["id"] in current]

    def faults(self, **body: Any) -> None:
        httpx.post(f"{self.url}/_sim/faults", json=body, timeout=10).raise_for_status()

    def fail(self, deployment_id: str) -> None:
        httpx.post(f"{self.url}/_sim/deployments/{deployment_id}/fail", timeout=10)

    def create(self, name: str, spec: dict[str, Any] | None = None) -> dict[str, Any]:
        body = {"name": name, **(spec or CREATE_SPEC)}
        r = httpx.post(
            f"{self.url}/api/v1beta1/orgs/org-t/projects/prj-t/aimodels",
            json=body,
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=10,
        )
        r.raise_for_status()
        return r.json()  # type: ignore[no-any-return]


@contextmanager
def sim_server(provision_seconds: float = 0.5, **kw: Any) -> Iterator[SimServer]:
    server = SimServer(provision_seconds, **kw).start()
    try:
        yield server
    finally:
        server.stop()


def wait_for(cond: Callable[[], Any], bound: float, what: str, poll: float = 0.05) -> Any:
    """Poll `cond` until truthy; fail naming `what` if the generous bound passes."""
    deadline = time.monotonic() + bound
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for: {what}")
        time.sleep(poll)


async def await_for(cond: Callable[[], Any], bound: float, what: str, poll: float = 0.05) -> Any:
    deadline = time.monotonic() + bound
    while True:
        value = cond()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for: {what}")
        await asyncio.sleep(poll)


def policy_yaml(
    name: str,
    *,
    redis_key: str,
    redis_url: str = "redis://127.0.0.1:6379/0",
    interval: str = "0.5s",
    min_replicas: int = 0,
    max_replicas: int = 4,
    per_replica: float = 5,
    idle_after: str = "2s",
    extra: str = "",
    deployment: str | None = None,
    cooldown: str = "0s",
) -> str:
    zero = (
        f"""scale_to_zero:
  after: {idle_after}
  activation:
    - {{metric: backlog, threshold: 0}}
"""
        if min_replicas == 0
        else ""
    )
    spec = "\n".join(
        f"    {k}: {v if not isinstance(v, dict) else '{max_model_len: 8192}'}"
        for k, v in CREATE_SPEC.items()
    )
    return f"""name: {name}
deployment:
  provider: sim
  name: {deployment or name}
  create:
{spec}
replicas: {{min: {min_replicas}, max: {max_replicas}}}
interval: {interval}
metrics:
  - name: backlog
    source: {{type: redis, url: "{redis_url}", key: "{redis_key}", mode: list, timeout: 1s}}
    target: {{type: average_value, value: {per_replica}}}
behavior:
  scale_up:
    stabilization_window: 0s
    cooldown: {cooldown}
    policies:
      - {{type: replicas, value: 4, period: 1s}}
  scale_down:
    stabilization_window: 0s
    cooldown: {cooldown}
    policies:
      - {{type: percent, value: 100, period: 1s}}
{zero}{extra}"""


def write_config(
    folder: Path,
    sim_url: str,
    policies: dict[str, str],
    *,
    state: str | None = None,
    extra: str = "",
    http_port: int | None = None,
    log_level: str = "info",
    zero_poll: str = "0.2s",
) -> Path:
    """`folder/config.yaml` plus `folder/policies/<name>.yaml`; the token in a file."""
    pol_dir = folder / "policies"
    pol_dir.mkdir(parents=True, exist_ok=True)
    for name, text in policies.items():
        (pol_dir / f"{name}.yaml").write_text(text)
    token_file = folder / "token"
    token_file.write_text(TOKEN)
    state_url = state or f"sqlite:///{folder / 'state.db'}"
    port = http_port if http_port is not None else free_port()
    config = folder / "config.yaml"
    config.write_text(
        f"""policies: {pol_dir}
providers:
  sim:
    type: neevcloud
    base_url: {sim_url}
    org_id: org-t
    project_id: prj-t
    token: {{file: {token_file}}}
    timeout: 2s
    max_retries: 1
    wait_ready_timeout: 30s
state:
  url: {state_url}
http:
  listen: 127.0.0.1:{port}
log:
  format: json
  level: {log_level}
zero_poll_interval: {zero_poll}
shutdown_timeout: 5s
{extra}"""
    )
    return config


def start_daemon_process(
    config: Path, env: dict[str, str] | None = None, log: Path | None = None
) -> subprocess.Popen[bytes]:
    full_env = {**os.environ, **(env or {})}
    out = open(log, "ab") if log is not None else subprocess.DEVNULL  # noqa: SIM115
    return subprocess.Popen(
        [PYTHON, "-m", "autoscaler", "run", "--config", str(config)],
        env=full_env,
        stdout=out,
        stderr=subprocess.STDOUT if log is not None else subprocess.DEVNULL,
        cwd=str(REPO),
    )


def python() -> str:
    return PYTHON if os.path.exists(PYTHON) else sys.executable


Mutation = Callable[[dict[str, Any]], None]


LIST_KEYS = ("items", "service_list", "endpoints")  # NeevCloud, NetMind, Nebius-style


class Mutate:
    """ASGI middleware in front of a simulator: while `mutation` is set, every list answer
    (`{"items": [...]}`, or a NetMind / Nebius-style one: `LIST_KEYS`) is passed through it
    before it is sent."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.mutation: Mutation | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        mutation = self.mutation
        if mutation is None or scope["type"] != "http" or scope["method"] != "GET":
            return await self.app(scope, receive, send)
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def capture(message: Any) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            else:
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, capture)
        body = b"".join(chunks)
        answer = json.loads(body) if body else None
        if isinstance(answer, dict) and any(isinstance(answer.get(k), list) for k in LIST_KEYS):
            mutation(answer)
            body = json.dumps(answer).encode()
        headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": body})
