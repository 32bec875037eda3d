"""Shared helpers for provider tests: profiles and specs per provider, a simulator served by
uvicorn on a free port in a background thread, and clients wired to a virtual clock."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

import httpx
import uvicorn
from starlette.applications import Starlette

from autoscaler.fakecloud import VirtualClock, create_app
from autoscaler.fakecloud.state import SimState
from autoscaler.policy.model import ProviderProfile
from autoscaler.providers.base import Provider
from autoscaler.providers.registry import build_provider
from autoscaler.providers.retry import Backoff, RetryPolicy
from tests.services import free_port

T = TypeVar("T")
TOKEN = "sim-secret-token-7f3a9c"
PROVIDERS = ("neevcloud", "netmind", "nebius")

SPECS: dict[str, dict[str, Any]] = {
    "neevcloud": {
        "catalog_id": "meta-llama-Llama-3.1-8B-Instruct",
        "region": "in-west-1",
        "gpu_config_id": "h100-80gb",
        "gpu_count": 1,
        "plan_id": "ondemand-h100",
        "config": {"max_model_len": 8192},
    },
    "netmind": {
        "flavor_id": "69475e82e81c4dd6be3467e2ca374e0c",
        "deploy_metadata": {
            "image_url": "vllm/vllm-openai:latest",
            "command": "vllm serve meta-llama/Llama-3.1-8B-Instruct",
            "port": 8000,
            "gpu_num": 1,
        },
    },
    "nebius": {
        "model_name": "gpt-oss-120b",
        "flavor_name": "base",
        "gpu_type": "gpu-h100-sxm",
        "gpu_count": 1,
    },
}


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def profile(kind: str, base_url: str, **overrides: Any) -> ProviderProfile:
    values: dict[str, Any] = {
        "name": f"{kind}-test",
        "type": kind,
        "base_url": base_url,
        "token": TOKEN,  # a plain string resolves to a literal Secret
        "timeout": 5.0,
        "max_retries": 4,
    }
    if kind == "neevcloud":
        values.update(org_id="org-test", project_id="prj-test")
    values.update(overrides)
    return ProviderProfile(**values)


class MaxJitter(random.Random):
    """Full jitter that always picks the top of the range: deterministic waits in tests."""

    def uniform(self, a: float, b: float) -> float:
        return b


class Sleeps:
    """An injectable sleep that advances a virtual clock and records each wait."""

    def __init__(self, clock: VirtualClock):
        self.clock = clock
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.clock.advance(max(0.0, seconds))
        await asyncio.sleep(0)


def client(
    kind: str,
    base_url: str,
    clock: VirtualClock,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    sleeps: Sleeps | None = None,
    retry: RetryPolicy | None = None,
    **overrides: Any,
) -> Provider:
    sleeps = sleeps or Sleeps(clock)
    return build_provider(
        profile(kind, base_url, **overrides),
        transport=transport,
        sleep=sleeps,
        clock=clock.monotonic,
        retry=retry or RetryPolicy(backoff=Backoff(base=0.5, cap=4.0), max_retries=4),
        rng=random.Random(7),
    )


def in_process(
    kind: str, *, provision_seconds: float = 60.0, **kw: Any
) -> tuple[Starlette, SimState, VirtualClock]:
    clock = VirtualClock()
    app = create_app(kind, token=TOKEN, provision_seconds=provision_seconds, clock=clock, **kw)
    return app, app.state.sim, clock


class ServedSim:
    """A simulator app served by uvicorn on 127.0.0.1:<free port> in a daemon thread."""

    def __init__(self, app: Starlette):
        self.app = app
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="critical", lifespan="off"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ServedSim:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"simulator did not start on port {self.port}")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
