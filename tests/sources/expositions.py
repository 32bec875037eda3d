"""Realistic expositions for tests, built with prometheus-client exactly as vLLM and LiteLLM do.

vLLM (v1 engine, `vllm/v1/metrics/loggers.py`) and the LiteLLM proxy both expose their metrics
through prometheus-client, so building a registry with their metric names, label names,
bucket bounds and help texts gives byte-for-byte the shape they serve, `_created` lines and
all. Values are set from the arguments, so each test knows the exact answer.
`fixtures/vllm_metrics.txt` is `vllm_exposition()` with the defaults (the 500-line fixture).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

FIXTURES = Path(__file__).parent / "fixtures"
MODEL = "meta-llama/Llama-3.1-8B-Instruct"

TTFT_BUCKETS = (
    0.001,
    0.005,
    0.01,
    0.02,
    0.04,
    0.06,
    0.08,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
    20.0,
    40.0,
    80.0,
    160.0,
    640.0,
    2560.0,
)
TPOT_BUCKETS = (
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.15,
    0.2,
    0.3,
    0.4,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
    20.0,
    40.0,
    80.0,
)
LATENCY_BUCKETS = (
    0.3,
    0.5,
    0.8,
    1.0,
    1.5,
    2.0,
    2.5,
    5.0,
    10.0,
    15.0,
    20.0,
    30.0,
    40.0,
    50.0,
    60.0,
    120.0,
    240.0,
    480.0,
    960.0,
    1920.0,
    7680.0,
)
TOKEN_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)
ITERATION_BUCKETS = (1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384)


@dataclass
class EngineState:
    """What one vLLM engine (one `engine` label value) reports."""

    running: float = 2
    waiting: float = 3
    kv_cache: float = 0.25
    prompt_tokens: float = 1000
    generation_tokens: float = 5000
    preemptions: float = 0
    ttft: Sequence[float] = (0.02, 0.03, 0.05, 0.2, 0.3, 0.7, 1.5)  # observations
    e2e: Sequence[float] = (1.2, 2.2, 3.5, 8.0)


@dataclass
class VllmState:
    engines: Mapping[str, EngineState] = field(
        default_factory=lambda: {
            "0": EngineState(),
            "1": EngineState(
                running=4,
                waiting=5,
                kv_cache=0.5,
                prompt_tokens=3000,
                generation_tokens=7000,
                ttft=(0.01, 0.09, 0.4, 2.0, 6.0),
            ),
        }
    )
    model: str = MODEL


def vllm_registry(
    state: VllmState | None = None, *, with_process_metrics: bool = True
) -> CollectorRegistry:
    state = state or VllmState()
    registry = CollectorRegistry()
    labels = ["model_name", "engine"]
    info = Gauge(
        "vllm:cache_config_info",
        "Information of the LLMEngine CacheConfig",
        [
            "block_size",
            "cache_dtype",
            "enable_prefix_caching",
            "gpu_memory_utilization",
            "num_gpu_blocks",
            "engine",
        ],
        registry=registry,
    )
    running = Gauge(
        "vllm:num_requests_running",
        "Number of requests in model execution batches.",
        labels,
        registry=registry,
    )
    waiting = Gauge(
        "vllm:num_requests_waiting",
        "Number of requests waiting to be processed.",
        labels,
        registry=registry,
    )
    kv = Gauge(
        "vllm:kv_cache_usage_perc",
        "KV-cache usage. 1 means 100 percent usage.",
        labels,
        registry=registry,
    )
    prefix_queries = Counter(
        "vllm:prefix_cache_queries",
        "Prefix cache queries, in terms of number of queried tokens.",
        labels,
        registry=registry,
    )
    prefix_hits = Counter(
        "vllm:prefix_cache_hits",
        "Prefix cache hits, in terms of number of cached tokens.",
        labels,
        registry=registry,
    )
    preemptions = Counter(
        "vllm:num_preemptions",
        "Cumulative number of preemption from the engine.",
        labels,
        registry=registry,
    )
    prompt = Counter(
        "vllm:prompt_tokens", "Number of prefill tokens processed.", labels, registry=registry
    )
    generation = Counter(
        "vllm:generation_tokens",
        "Number of generation tokens processed.",
        labels,
        registry=registry,
    )
    success = Counter(
        "vllm:request_success",
        "Count of successfully processed requests.",
        [*labels, "finished_reason"],
        registry=registry,
    )
    ttft = Histogram(
        "vllm:time_to_first_token_seconds",
        "Histogram of time to first token in seconds.",
        labels,
        buckets=TTFT_BUCKETS,
        registry=registry,
    )
    tpot = Histogram(
        "vllm:time_per_output_token_seconds",
        "Histogram of time per output token in seconds.",
        labels,
        buckets=TPOT_BUCKETS,
        registry=registry,
    )
    e2e = Histogram(
        "vllm:e2e_request_latency_seconds",
        "Histogram of e2e request latency in seconds.",
        labels,
        buckets=LATENCY_BUCKETS,
        registry=registry,
    )
    queue_time = Histogram(
        "vllm:request_queue_time_seconds",
        "Histogram of time spent in WAITING phase for request.",
        labels,
        buckets=LATENCY_BUCKETS,
        registry=registry,
    )
    prompt_hist = Histogram(
        "vllm:request_prompt_tokens",
        "Number of prefill tokens processed.",
        labels,
        buckets=TOKEN_BUCKETS,
        registry=registry,
    )
    gen_hist = Histogram(
        "vllm:request_generation_tokens",
        "Number of generation tokens processed.",
        labels,
        buckets=TOKEN_BUCKETS,
        registry=registry,
    )
    iteration = Histogram(
        "vllm:iteration_tokens_total",
        "Histogram of number of tokens per engine_step.",
        labels,
        buckets=ITERATION_BUCKETS,
        registry=registry,
    )
    prefill = Histogram(
        "vllm:request_prefill_time_seconds",
        "Histogram of time spent in PREFILL phase for request.",
        labels,
        buckets=LATENCY_BUCKETS,
        registry=registry,
    )
    decode = Histogram(
        "vllm:request_decode_time_seconds",
        "Histogram of time spent in DECODE phase for request.",
        labels,
        buckets=LATENCY_BUCKETS,
        registry=registry,
    )
    if with_process_metrics:  # vLLM serves the default registry: python_gc_*, process_*
        GCCollector(registry=registry)
        PlatformCollector(registry=registry)
        ProcessCollector(registry=registry)
    for engine, s in state.engines.items():
        lv = (state.model, engine)
        info.labels("16", "auto", "True", "0.9", "27000", engine).set(1)
        running.labels(*lv).set(s.running)
        waiting.labels(*lv).set(s.waiting)
        kv.labels(*lv).set(s.kv_cache)
        prefix_queries.labels(*lv).inc(s.prompt_tokens)
        prefix_hits.labels(*lv).inc(s.prompt_tokens / 4)
        preemptions.labels(*lv).inc(s.preemptions)
        prompt.labels(*lv).inc(s.prompt_tokens)
        generation.labels(*lv).inc(s.generation_tokens)
        for reason, n in (("stop", len(s.ttft)), ("length", 1), ("abort", 0)):
            success.labels(*lv, reason).inc(n)
        # vLLM creates every labelled child at start-up, so idle histograms are exposed too.
        for hist in (
            ttft,
            tpot,
            e2e,
            queue_time,
            prompt_hist,
            gen_hist,
            iteration,
            prefill,
            decode,
        ):
            hist.labels(*lv)
        for v in s.ttft:
            ttft.labels(*lv).observe(v)
            queue_time.labels(*lv).observe(v / 2)
            prompt_hist.labels(*lv).observe(300)
            gen_hist.labels(*lv).observe(120)
            iteration.labels(*lv).observe(64)
            tpot.labels(*lv).observe(0.02)
        for v in s.e2e:
            e2e.labels(*lv).observe(v)
            prefill.labels(*lv).observe(v / 10)
            decode.labels(*lv).observe(v * 0.9)
    return registry


def vllm_exposition(state: VllmState | None = None, *, openmetrics: bool = False) -> str:
    registry = vllm_registry(state)
    if openmetrics:
        return generate_openmetrics(registry, escaping="allow-utf-8").decode()
    return generate_latest(registry).decode()


def litellm_exposition(
    requests: Mapping[str, float], *, latency: Sequence[float] = (0.4, 1.2), in_flight: float = 3
) -> str:
    """The LiteLLM proxy's metric names: per-model request counters and latency."""
    registry = CollectorRegistry()
    req = Counter(
        "litellm_requests_metric",
        "Total number of LLM calls to litellm - track total per API Key, team, user",
        ["end_user", "hashed_api_key", "api_key_alias", "model", "team", "team_alias", "user"],
        registry=registry,
    )
    proxy = Counter(
        "litellm_proxy_total_requests_metric",
        "Total number of requests made to the proxy server - track number of client side requests",
        [
            "end_user",
            "hashed_api_key",
            "api_key_alias",
            "requested_model",
            "team",
            "team_alias",
            "user",
            "status_code",
        ],
        registry=registry,
    )
    failed = Counter(
        "litellm_proxy_failed_requests_metric",
        "Total number of failed responses from proxy - the client did not get a "
        "success response from litellm proxy",
        [
            "end_user",
            "hashed_api_key",
            "api_key_alias",
            "requested_model",
            "team",
            "team_alias",
            "user",
            "exception_status",
            "exception_class",
        ],
        registry=registry,
    )
    latency_hist = Histogram(
        "litellm_request_total_latency_metric",
        "Total latency (seconds) for a request to LiteLLM",
        [
            "model",
            "hashed_api_key",
            "api_key_alias",
            "team",
            "team_alias",
            "requested_model",
            "end_user",
            "user",
        ],
        buckets=(
            0.005,
            0.01,
            0.025,
            0.05,
            0.1,
            0.25,
            0.5,
            1.0,
            2.5,
            5.0,
            10.0,
            30.0,
            60.0,
            120.0,
            300.0,
            600.0,
        ),
        registry=registry,
    )
    deployment_state = Gauge(
        "litellm_deployment_state",
        "LLM Deployment Analytics - The state of the deployment: 0 = "
        "healthy, 1 = partial outage, 2 = complete outage",
        ["litellm_model_name", "model_id", "api_base", "api_provider"],
        registry=registry,
    )
    flight = Gauge(
        "litellm_in_flight_requests", "Number of requests being processed", registry=registry
    )
    for model, n in requests.items():
        req.labels(
            "",
            "88dc28d0f030c55ed4ab77ed8faf098196cb1c05df778539800c9f1243fe6b4b",
            "",
            model,
            "",
            "",
            "",
        ).inc(n)
        proxy.labels(
            "",
            "88dc28d0f030c55ed4ab77ed8faf098196cb1c05df778539800c9f1243fe6b4b",
            "",
            model,
            "",
            "",
            "",
            "200",
        ).inc(n)
        failed.labels("", "88dc28", "", model, "", "", "", "429", "RateLimitError").inc(0)
        for v in latency:
            latency_hist.labels(model, "88dc28", "", "", "", model, "", "").observe(v)
        deployment_state.labels(model, "dep-1", "http://vllm:8000/v1", "hosted_vllm").set(0)
    flight.set(in_flight)
    return generate_latest(registry).decode()


if __name__ == "__main__":  # regenerate the committed fixture
    (FIXTURES / "vllm_metrics.txt").write_text(vllm_exposition())
