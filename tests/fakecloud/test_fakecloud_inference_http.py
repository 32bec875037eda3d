"""The simulators' fake vLLM over real HTTP (uvicorn on a loopback port, httpx clients):
OpenAI shapes streamed and not, the inference key, 404 while a deployment is not serving, the
max_num_seqs cap with its FIFO queue seen on vLLM's own metrics, faults mid-stream, and the
provider clients' `inference_route` leading to a working endpoint for every provider.

No timed assertions: waits are on conditions with generous deadlines."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from autoscaler.fakecloud import VirtualClock, create_app
from autoscaler.fakecloud.inference import InferenceSettings
from autoscaler.fakecloud.state import SimState
from autoscaler.policy.model import InferenceProfile
from autoscaler.providers.base import DeploymentInfo, InferenceRoute, Provider
from autoscaler.providers.registry import build_provider
from tests.providers.helpers import PROVIDERS, SPECS, TOKEN, ServedSim, profile
from tests.services import free_port

KEY = "sk-test-inference-key"
FAST = {"token_rate": 2000.0, "ttft": 0.0, "inference_key": KEY}
DEADLINE = 60.0  # seconds: generous, for a loaded 2-core machine
CHAT = [{"role": "user", "content": "tell me something"}]


@pytest.fixture
def served() -> Iterator[Callable[..., tuple[ServedSim, SimState, VirtualClock]]]:
    """Start simulators on free loopback ports; stop them after the test."""
    running: list[ServedSim] = []

    def start(
        kind: str, provision_seconds: float = 0.0, **settings: Any
    ) -> tuple[ServedSim, SimState, VirtualClock]:
        clock = VirtualClock()
        app = create_app(
            kind,
            token=TOKEN,
            provision_seconds=provision_seconds,
            clock=clock,
            inference=InferenceSettings(**{**FAST, **settings}),
        )
        sim = ServedSim(app).__enter__()
        running.append(sim)
        return sim, app.state.sim, clock

    yield start
    for sim in running:
        sim.__exit__(None, None, None)


def provider(kind: str, url: str) -> Provider:
    return build_provider(profile(kind, url, inference=InferenceProfile(token=KEY)))  # type: ignore[arg-type]


async def deploy(kind: str, url: str, name: str = "chat-llama") -> tuple[Provider, DeploymentInfo]:
    p = provider(kind, url)
    await p.create(name, SPECS[kind], 1)
    info = await p.find(name)
    assert info is not None
    return p, info


async def ready_route(
    kind: str, sim: Any, clock: VirtualClock | None = None, start_up: float = 0.0
) -> tuple[Provider, DeploymentInfo, InferenceRoute, str]:
    """A deployment made and, after `start_up` seconds on `clock`, ready: its client, what
    the client sees of it, its route and the URL of its vLLM metrics page."""
    p, info = await deploy(kind, sim.url)
    if clock is not None:
        clock.advance(start_up)
        found = await p.find(info.name)
        assert found is not None
        info = found
    route = p.inference_route(info)
    assert route is not None
    return p, info, route, route.base_url.removesuffix("/v1") + "/metrics"


async def until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def sse_events(lines: list[str]) -> list[Any]:
    events = [line.removeprefix("data: ") for line in lines if line.startswith("data: ")]
    return [e if e == "[DONE]" else json.loads(e) for e in events]


def metric_values(text: str) -> dict[str, float]:
    """Sample name (with finished_reason when present) -> value, through prometheus-client."""
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            reason = s.labels.get("finished_reason")
            out[s.name + (f"[{reason}]" if reason else "")] = s.value
    return out


# --- the OpenAI shapes ------------------------------------------------------------------------


def test_chat_completion_embeddings_and_models_over_http(served: Any) -> None:
    sim, _state, _clock = served("neevcloud")

    async def scenario() -> None:
        p, info = await deploy("neevcloud", sim.url)
        route = p.inference_route(info)
        assert route is not None and route.model == "meta-llama/Llama-3.1-8B-Instruct"
        async with httpx.AsyncClient(base_url=route.base_url, headers=route.headers) as h:
            chat = await h.post(
                "/chat/completions", json={"model": route.model, "messages": CHAT, "max_tokens": 5}
            )
            assert chat.status_code == 200, chat.text
            body = chat.json()
            assert body["object"] == "chat.completion"
            assert body["choices"][0]["message"]["role"] == "assistant"
            assert body["choices"][0]["finish_reason"] == "length"
            assert len(body["choices"][0]["message"]["content"].split()) == 5
            assert body["usage"] == {"prompt_tokens": 4, "completion_tokens": 5, "total_tokens": 9}

            text = await h.post("/completions", json={"model": route.model, "prompt": "a b c"})
            assert text.json()["object"] == "text_completion"
            assert text.json()["usage"]["completion_tokens"] == 16  # the default max_tokens
            assert text.json()["choices"][0]["finish_reason"] == "stop"

            emb = await h.post("/embeddings", json={"model": route.model, "input": ["x y", "z"]})
            assert [d["index"] for d in emb.json()["data"]] == [0, 1]
            assert emb.json()["usage"] == {"prompt_tokens": 3, "total_tokens": 3}

            models = await h.get("/models")
            assert [m["id"] for m in models.json()["data"]] == [route.model]

            wrong = await h.post("/chat/completions", json={"model": "other", "messages": CHAT})
            assert wrong.status_code == 404 and wrong.json()["error"]["code"] == "model_not_found"
            bad = await h.post("/chat/completions", json={"model": route.model, "messages": []})
            assert bad.status_code == 400 and bad.json()["error"]["param"] == "messages"
        await p.aclose()

    asyncio.run(scenario())


def test_streaming_sends_openai_chunks_a_usage_chunk_and_done(served: Any) -> None:
    sim, _state, _clock = served("netmind")

    async def scenario() -> None:
        p, info = await deploy("netmind", sim.url)
        route = p.inference_route(info)
        assert route is not None and route.model is None
        request = {
            "model": "any-name",
            "messages": CHAT,
            "max_tokens": 4,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        async with httpx.AsyncClient(base_url=route.base_url, headers=route.headers) as h:
            async with h.stream("POST", "/chat/completions", json=request) as r:
                assert r.status_code == 200
                assert r.headers["content-type"].startswith("text/event-stream")
                lines = [line async for line in r.aiter_lines()]
            whole = await h.post("/chat/completions", json={**request, "stream": False})
        events = sse_events(lines)
        assert events[-1] == "[DONE]"
        chunks = events[:-1]
        assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
        assert len({c["id"] for c in chunks}) == 1
        assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
        content = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks[:-1])
        assert content == whole.json()["choices"][0]["message"]["content"]
        assert [c["choices"][0]["finish_reason"] for c in chunks[-2:-1]] == ["length"]
        assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 4
        assert all(c["usage"] is None for c in chunks[:-1])
        await p.aclose()

    asyncio.run(scenario())


def test_completions_stream_without_usage(served: Any) -> None:
    sim, _state, _clock = served("netmind")

    async def scenario() -> list[Any]:
        p, info = await deploy("netmind", sim.url)
        route = p.inference_route(info)
        assert route is not None
        body = {"model": "m", "prompt": "hi", "max_tokens": 3, "stream": True}
        async with (
            httpx.AsyncClient(base_url=route.base_url, headers=route.headers) as h,
            h.stream("POST", "/completions", json=body) as r,
        ):
            lines = [line async for line in r.aiter_lines()]
        await p.aclose()
        return sse_events(lines)

    events = asyncio.run(scenario())
    assert events[-1] == "[DONE]" and len(events) == 5  # 3 tokens, the finish chunk, DONE
    assert all("usage" not in e for e in events[:-1])
    assert "".join(e["choices"][0]["text"] for e in events[:-1]).split() == [
        "the",
        "model",
        "answers",
    ]


# --- auth and lifecycle -----------------------------------------------------------------------


def test_a_wrong_key_gets_401_in_openai_shape(served: Any) -> None:
    sim, _state, _clock = served("neevcloud", inference_key=None)

    async def scenario() -> None:
        p, info = await deploy("neevcloud", sim.url)
        assert info.endpoint_url
        body = {"model": info.served_model, "messages": CHAT}
        async with httpx.AsyncClient(base_url=info.endpoint_url) as h:
            for headers in ({}, {"Authorization": f"Bearer {TOKEN}"}):  # the API token is no key
                refused = await h.post("/chat/completions", json=body, headers=headers)
                assert refused.status_code == 401
                assert refused.json()["error"]["type"] == "AuthenticationError"
            nc_key = {"Authorization": f"Bearer sk-nc-{TOKEN}"}  # the simulator's default key
            ok = await h.post("/chat/completions", json=body, headers=nc_key)
            assert ok.status_code == 200
        await p.aclose()

    asyncio.run(scenario())


@pytest.mark.parametrize("kind", PROVIDERS)
def test_404_while_initializing_200_when_ready_404_once_deleted(served: Any, kind: str) -> None:
    sim, state, clock = served(kind, provision_seconds=600)

    async def scenario() -> list[int]:
        p, info = await deploy(kind, sim.url)
        assert info.status == "initializing" and p.inference_route(info) is None
        assert info.endpoint_url is None or kind == "nebius"
        dep = state.current()[0]
        app_fake = sim.app.state.inference
        label = app_fake.hooks.inference_label(dep)
        base = f"{sim.url}/inference/{label}/v1" if label else f"{sim.url}/v1"
        model = app_fake.hooks.served_model(dep) or "m"
        body = {"model": model, "messages": CHAT, "max_tokens": 2}
        statuses = []
        async with httpx.AsyncClient(
            base_url=base, headers={"Authorization": f"Bearer {KEY}"}
        ) as h:
            statuses.append((await h.post("/chat/completions", json=body)).status_code)
            clock.advance(600)
            ready = await p.find("chat-llama")
            assert ready is not None and ready.status == "ready"
            route = p.inference_route(ready)
            assert route is not None and route.base_url == base
            statuses.append((await h.post("/chat/completions", json=body)).status_code)
            await p.delete(ready)
            gone = await h.post("/chat/completions", json=body)
            statuses.append(gone.status_code)
            assert "error" in gone.json()
        await p.aclose()
        return statuses

    assert asyncio.run(scenario()) == [404, 200, 404]


@pytest.mark.parametrize("kind", PROVIDERS)
def test_inference_route_reaches_the_deployment_for_every_provider(served: Any, kind: str) -> None:
    """What the gateway does: find the deployment, ask the client for its route, forward."""
    sim, _state, _clock = served(kind)

    async def scenario() -> dict[str, Any]:
        p, info = await deploy(kind, sim.url)
        route = p.inference_route(info)
        assert route is not None
        model = route.model or "client-model"
        async with httpx.AsyncClient(base_url=route.base_url, headers=route.headers) as h:
            answer = await h.post(
                "/chat/completions", json={"model": model, "messages": CHAT, "max_tokens": 2}
            )
        await p.aclose()
        assert answer.status_code == 200, answer.text
        return answer.json()  # type: ignore[no-any-return]

    body = asyncio.run(scenario())
    assert body["usage"]["completion_tokens"] == 2


# --- the concurrency cap and its queue --------------------------------------------------------


def test_max_num_seqs_caps_running_and_queues_the_rest_per_replica(served: Any) -> None:
    """Five slow streams on one replica with max_num_seqs=2: two run, three wait (on
    vLLM's own gauges); a second replica takes two more; all five are answered."""
    sim, _state, clock = served("neevcloud", max_num_seqs=2, token_rate=5.0, provision_seconds=10)

    async def scenario() -> None:
        p, info, route, metrics_url = await ready_route("neevcloud", sim, clock, 10)
        body = {"model": route.model, "messages": CHAT, "max_tokens": 60, "stream": True}

        async with httpx.AsyncClient(headers=route.headers, timeout=DEADLINE) as h:

            async def gauges() -> dict[str, float]:
                return metric_values((await h.get(metrics_url)).text)

            async def one() -> int:
                async with h.stream("POST", route.base_url + "/chat/completions", json=body) as r:
                    events = sse_events([line async for line in r.aiter_lines()])
                    assert events[-1] == "[DONE]"
                    return r.status_code

            async def state_is(running: float, waiting: float) -> bool:
                g = await gauges()
                return (g["vllm:num_requests_running"], g["vllm:num_requests_waiting"]) == (
                    running,
                    waiting,
                )

            tasks = [asyncio.create_task(one()) for _ in range(5)]
            await until(lambda: state_is(2, 3), "2 running and 3 waiting")
            assert (await gauges())["vllm:kv_cache_usage_perc"] == 1.0
            await p.scale(info, 2)  # serving stays at one replica during the change
            assert (await gauges())["vllm:num_requests_running"] <= 2
            clock.advance(10)  # the second replica is ready
            await until(lambda: state_is(4, 1), "4 running and 1 waiting on two replicas")
            await h.post(f"{sim.url}/_sim/inference", json={"token_rate": 5000})  # finish now
            assert await asyncio.gather(*tasks) == [200] * 5
            final = await gauges()
            assert final["vllm:num_requests_running"] == final["vllm:num_requests_waiting"] == 0
            assert final["vllm:request_success_total[length]"] == 5
            assert final["vllm:generation_tokens_total"] == 300
            assert final["vllm:time_to_first_token_seconds_count"] == 5
            assert final["vllm:e2e_request_latency_seconds_count"] == 5
        await p.aclose()

    asyncio.run(scenario())


def test_a_request_that_waited_shows_its_wait_and_its_run_on_the_phase_histograms(
    served: Any,
) -> None:
    """max_num_seqs=1: a second request waits behind a slow first one (held at least 0.5 s
    after it is seen waiting), then both finish. vLLM's WAITING histogram has one wait in its
    first bucket (0.3 s) and one beyond; RUNNING, PREFILL and DECODE count both."""
    sim, _state, clock = served("neevcloud", max_num_seqs=1, token_rate=2.0, ttft=0.1)

    async def scenario() -> None:
        p, _, route, metrics_url = await ready_route("neevcloud", sim, clock, 1)
        body = {"model": route.model, "messages": CHAT, "max_tokens": 10}
        async with httpx.AsyncClient(headers=route.headers, timeout=DEADLINE) as h:
            url = route.base_url + "/chat/completions"

            async def state_is(running: float, waiting: float) -> bool:
                g = metric_values((await h.get(metrics_url)).text)
                return (g["vllm:num_requests_running"], g["vllm:num_requests_waiting"]) == (
                    running,
                    waiting,
                )

            first = asyncio.create_task(h.post(url, json=body))
            await until(lambda: state_is(1, 0), "the first request running")
            second = asyncio.create_task(h.post(url, json=body))
            await until(lambda: state_is(1, 1), "the second request waiting")
            await asyncio.sleep(0.5)  # a lower bound on its wait, not a timing assertion
            await h.post(f"{sim.url}/_sim/inference", json={"token_rate": 5000})  # finish now
            assert [(await first).status_code, (await second).status_code] == [200, 200]
            text = (await h.get(metrics_url)).text
        await p.aclose()
        m = metric_values(text)
        le = {
            (s.name, s.labels["le"]): s.value
            for f in text_string_to_metric_families(text)
            for s in f.samples
            if "le" in s.labels
        }
        queue, run = "vllm:request_queue_time_seconds", "vllm:request_inference_time_seconds"
        for phase in (queue, run, "vllm:request_prefill_time_seconds"):
            assert m[f"{phase}_count"] == 2, phase
        assert m["vllm:request_decode_time_seconds_count"] == 2
        # the first ran at once, the second waited for it (first bucket: 0.3 s)
        assert (le[(f"{queue}_bucket", "0.3")], le[(f"{queue}_bucket", "+Inf")]) == (1, 2)
        assert m[f"{queue}_sum"] >= 0.5
        assert m[f"{run}_sum"] >= 2 * 0.1  # each prefilled 0.1 s, then decoded
        assert m["vllm:request_prefill_time_seconds_sum"] >= 2 * 0.1
        assert m[f"{run}_sum"] == pytest.approx(
            m["vllm:request_prefill_time_seconds_sum"] + m["vllm:request_decode_time_seconds_sum"]
        )

    asyncio.run(scenario())


def test_a_client_leaving_the_queue_frees_its_place(served: Any) -> None:
    sim, _state, _clock = served("netmind", max_num_seqs=1, token_rate=4.0)

    async def scenario() -> None:
        p, _, route, metrics_url = await ready_route("netmind", sim)
        long = {"model": "m", "messages": CHAT, "max_tokens": 40}
        async with httpx.AsyncClient(headers=route.headers, timeout=DEADLINE) as h:

            async def waiting(n: float) -> bool:
                g = metric_values((await h.get(metrics_url)).text)
                return g["vllm:num_requests_waiting"] == n

            first = asyncio.create_task(h.post(route.base_url + "/chat/completions", json=long))
            await until(lambda: _running(h, metrics_url, 1), "the first request running")
            async with httpx.AsyncClient(headers=route.headers, timeout=DEADLINE) as other:
                queued = asyncio.create_task(
                    other.post(route.base_url + "/chat/completions", json=long)
                )
                await until(lambda: waiting(1), "the second request waiting")
                queued.cancel()  # the client goes away: its connection closes
            await until(lambda: waiting(0), "the queue to empty")
            assert not first.done()  # the running request is untouched...
            await h.post(f"{sim.url}/_sim/inference", json={"token_rate": 5000})
            assert (await first).status_code == 200  # ...and answered
            g = metric_values((await h.get(metrics_url)).text)
            assert g["vllm:request_success_total[length]"] == 1
        await p.aclose()

    asyncio.run(scenario())


async def _running(h: httpx.AsyncClient, url: str, n: float) -> bool:
    return metric_values((await h.get(url)).text)["vllm:num_requests_running"] == n


# --- faults -----------------------------------------------------------------------------------


def test_a_stream_cut_after_k_chunks_and_a_5xx(served: Any) -> None:
    sim, _state, _clock = served("nebius")

    async def scenario() -> None:
        p, info = await deploy("nebius", sim.url)
        route = p.inference_route(info)
        assert route is not None
        body = {"model": route.model, "messages": CHAT, "max_tokens": 10, "stream": True}
        async with httpx.AsyncClient(headers=route.headers, timeout=DEADLINE) as h:
            settings = await h.post(
                f"{sim.url}/_sim/inference", json={"cut_next": 1, "cut_after_chunks": 3}
            )
            assert settings.json()["settings"]["cut_next"] == 1
            received: list[str] = []
            with pytest.raises(httpx.RemoteProtocolError):
                async with h.stream("POST", route.base_url + "/chat/completions", json=body) as r:
                    assert r.status_code == 200
                    async for line in r.aiter_lines():
                        received.append(line)
            assert len(sse_events(received)) == 3 and "data: [DONE]" not in received
            await until(lambda: _running(h, f"{sim.url}/metrics", 0), "the cut slot released")

            await h.post(f"{sim.url}/_sim/inference", json={"error_next": 1, "error_status": 502})
            failed = await h.post(
                route.base_url + "/chat/completions", json={**body, "stream": False}
            )
            assert failed.status_code == 502
            assert failed.json()["error"]["type"] == "InternalServerError"
            again = await h.post(
                route.base_url + "/chat/completions", json={**body, "stream": False}
            )
            assert again.status_code == 200

            bad = await h.post(f"{sim.url}/_sim/inference", json={"max_num_seqs": 0})
            assert bad.status_code == 400 and "max_num_seqs" in bad.json()["error"]
        await p.aclose()

    asyncio.run(scenario())


def test_deleting_a_deployment_interrupts_its_streams(served: Any) -> None:
    sim, _state, _clock = served("neevcloud", token_rate=20.0)

    async def scenario() -> None:
        p, info = await deploy("neevcloud", sim.url)
        route = p.inference_route(info)
        assert route is not None
        body = {"model": route.model, "messages": CHAT, "max_tokens": 200, "stream": True}
        async with httpx.AsyncClient(headers=route.headers, timeout=DEADLINE) as h:
            with pytest.raises(httpx.RemoteProtocolError):
                async with h.stream("POST", route.base_url + "/chat/completions", json=body) as r:
                    async for line in r.aiter_lines():
                        if line.startswith("data: "):
                            await p.delete(info)  # "in-flight inference requests will be
                            # interrupted" (seed 001)
        await p.aclose()

    asyncio.run(scenario())


def test_the_root_metrics_page_labels_each_deployment(served: Any) -> None:
    sim, _state, _clock = served("nebius")

    async def scenario() -> str:
        p, a = await deploy("nebius", sim.url, "chat-a")
        _p, b = await deploy("nebius", sim.url, "chat-b")
        for info in (a, b):
            route = p.inference_route(info)
            assert route is not None
            async with httpx.AsyncClient(headers=route.headers) as h:
                body = {"model": route.model, "messages": CHAT, "max_tokens": 1}
                assert (await h.post(route.base_url + "/chat/completions", json=body)).is_success
        async with httpx.AsyncClient() as h:
            text = (await h.get(f"{sim.url}/metrics")).text
        await p.aclose()
        await _p.aclose()
        return text

    text = asyncio.run(scenario())
    families = {f.name: f for f in text_string_to_metric_families(text)}
    running = families["vllm:num_requests_running"].samples
    assert len(running) == 2
    assert {s.labels["model_name"].split("-ep-")[0] for s in running} == {"gpt-oss-120b"}
    assert len({s.labels["deployment"] for s in running}) == 2


# --- the command line -------------------------------------------------------------------------


def test_sim_provider_inference_flags(tmp_path: Any) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "autoscaler", "sim-provider", "--provider", "netmind",
         "--port", str(port), "--provision-seconds", "0", "--token-rate", "500", "--ttft", "0",
         "--max-num-seqs", "3", "--max-tokens", "2", "--inference-key", KEY],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline().strip() for _ in range(3)]
        assert lines[0] == f"netmind simulator at http://127.0.0.1:{port}", proc.stderr
        token = lines[1].removeprefix("token: ")
        assert lines[2] == f"inference key: {KEY}"
        url = lines[0].split(" at ")[1]
        with httpx.Client(base_url=url, timeout=DEADLINE) as h:
            settings = h.get("/_sim/inference").json()["settings"]
            assert (settings["token_rate"], settings["max_num_seqs"]) == (500.0, 3)
            client = build_provider(
                profile("netmind", url, token=token, inference=InferenceProfile(token=KEY))  # type: ignore[arg-type]
            )
            info = asyncio.run(client.create("chat", SPECS["netmind"], 1))
            route = client.inference_route(info)
            assert route is not None
            answer = h.post(
                f"{route.base_url}/completions",
                headers=route.headers,
                json={"model": "m", "prompt": "hello"},
            )
            assert answer.json()["usage"]["completion_tokens"] == 2
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_sim_provider_refuses_a_zero_token_rate() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "autoscaler", "sim-provider", "--provider", "nebius",
         "--port", "0", "--token-rate", "0"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2 and "--token-rate" in done.stderr and "must be > 0" in done.stderr


def test_api_faults_and_the_write_log_leave_inference_alone(served: Any) -> None:
    """The provider API's random faults (`/_sim/faults`) do not touch inference, which has its
    own (`/_sim/inference`), and inference calls do not fill the write log."""
    sim, state, _clock = served("netmind")

    async def scenario() -> int:
        p, info = await deploy("netmind", sim.url)
        route = p.inference_route(info)
        assert route is not None
        async with httpx.AsyncClient(headers=route.headers) as h:
            await h.post(f"{sim.url}/_sim/faults", json={"error_rate": 1.0})
            body = {"model": "m", "messages": CHAT, "max_tokens": 1}
            answer = await h.post(route.base_url + "/chat/completions", json=body)
            api = await h.get(f"{sim.url}/v1/inference-service/{info.id}")
        await p.aclose()
        assert api.status_code == 500  # the fault is on
        return answer.status_code

    assert asyncio.run(scenario()) == 200
    assert [r["path"] for r in state.requests] == ["/v1/inference-service"]  # the create only
