"""The fake vLLM's metrics: `Engine` (one deployment's scheduler and counters) and
`render_metrics` (the exposition under vLLM's own metric names and labels, one series set per
deployment). Pure: no clock, no I/O; `inference_fake.py` feeds the counters."""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from autoscaler.fakecloud.inference import RequestPlan, SlotScheduler

TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0,
                7.5, 10.0, 20.0, 40.0, 80.0)  # fmt: skip
E2E_BUCKETS = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0,
               120.0, 240.0, 480.0)  # fmt: skip
# vLLM's `request_latency_buckets` (v0.8 and later: e2e, queue, inference, prefill and decode
# times; tests/sources/fixtures/vllm_metrics.txt). The e2e histogram above keeps its older
# bounds (the other tests read them).
REQUEST_BUCKETS = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0,
                   60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0)  # fmt: skip
INF = 'le="+Inf"'


@dataclass
class Histogram:
    buckets: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    count: int = 0

    def __post_init__(self) -> None:
        self.counts = [0] * len(self.buckets)

    def observe(self, value: float) -> None:
        index = bisect.bisect_left(self.buckets, value)
        if index < len(self.counts):
            self.counts[index] += 1
        self.total += value
        self.count += 1

    def cumulative(self) -> list[int]:
        out, running = [], 0
        for n in self.counts:
            running += n
            out.append(running)
        return out


@dataclass
class Engine:
    """One deployment's vLLM: its scheduler and the counters its /metrics exports."""

    scheduler: SlotScheduler[int] = field(default_factory=SlotScheduler)
    prompt_tokens: int = 0
    generation_tokens: int = 0
    success: dict[str, int] = field(default_factory=dict)  # finished_reason -> count
    ttft: Histogram = field(default_factory=lambda: Histogram(TTFT_BUCKETS))
    e2e: Histogram = field(default_factory=lambda: Histogram(E2E_BUCKETS))
    queue: Histogram = field(default_factory=lambda: Histogram(REQUEST_BUCKETS))
    inference: Histogram = field(default_factory=lambda: Histogram(REQUEST_BUCKETS))
    prefill: Histogram = field(default_factory=lambda: Histogram(REQUEST_BUCKETS))
    decode: Histogram = field(default_factory=lambda: Histogram(REQUEST_BUCKETS))
    next_id: int = 0

    def new_request(self) -> int:
        self.next_id += 1
        return self.next_id

    def first_token(self, arrived: float, now: float) -> None:
        self.ttft.observe(max(0.0, now - arrived))

    def finished(
        self,
        plan: RequestPlan,
        generated: int,
        arrived: float,
        now: float,
        scheduled: float | None = None,
        first: float | None = None,
    ) -> None:
        """A request was answered in full: count it as vLLM does. Like vLLM (v1), its phase
        times are observed when it finishes: WAITING from `arrived` to `scheduled` (admitted
        to the running batch), RUNNING from `scheduled` to `now`, split at its `first` token
        into PREFILL and DECODE (both times default to `arrived`: it ran at once)."""
        self.prompt_tokens += plan.prompt_tokens
        self.generation_tokens += generated
        self.success[plan.finish_reason] = self.success.get(plan.finish_reason, 0) + 1
        self.e2e.observe(max(0.0, now - arrived))
        scheduled = arrived if scheduled is None else max(arrived, scheduled)
        first = scheduled if first is None else min(max(scheduled, first), max(scheduled, now))
        self.queue.observe(scheduled - arrived)
        self.inference.observe(max(0.0, now - scheduled))
        self.prefill.observe(first - scheduled)
        self.decode.observe(max(0.0, now - first))

    def aborted(self, plan: RequestPlan, generated: int) -> None:
        """A request ended early (client gone, stream cut, deployment deleted): its tokens were
        processed, but it is no success."""
        self.prompt_tokens += plan.prompt_tokens
        self.generation_tokens += generated

    def cache_usage(self) -> float:
        capacity = self.scheduler.capacity
        return min(1.0, len(self.scheduler.running) / capacity) if capacity else 0.0


def _labels(labels: Mapping[str, str], extra: str = "") -> str:
    def esc(v: str) -> str:
        return v.replace("\\", r"\\").replace('"', r"\"").replace("\n", r"\n")

    parts = [f'{k}="{esc(v)}"' for k, v in labels.items()]
    if extra:
        parts.insert(0, extra)
    return "{" + ",".join(parts) + "}"


def _num(value: float) -> str:
    return repr(float(value)) if math.isfinite(value) else ("+Inf" if value > 0 else "-Inf")


HELP = {
    "vllm:num_requests_running": ("gauge", "Number of requests in model execution batches."),
    "vllm:num_requests_waiting": ("gauge", "Number of requests waiting to be processed."),
    "vllm:gpu_cache_usage_perc": ("gauge", "GPU KV-cache usage. 1 means 100 percent usage."),
    "vllm:kv_cache_usage_perc": ("gauge", "KV-cache usage. 1 means 100 percent usage."),
    "vllm:prompt_tokens_total": ("counter", "Number of prefill tokens processed."),
    "vllm:generation_tokens_total": ("counter", "Number of generation tokens processed."),
    "vllm:request_success_total": ("counter", "Count of successfully processed requests."),
    "vllm:time_to_first_token_seconds": ("histogram", "Histogram of time to first token."),
    "vllm:e2e_request_latency_seconds": ("histogram", "Histogram of end to end request latency."),
    "vllm:request_queue_time_seconds": (
        "histogram",
        "Histogram of time spent in WAITING phase for request.",
    ),
    "vllm:request_inference_time_seconds": (
        "histogram",
        "Histogram of time spent in RUNNING phase for request.",
    ),
    "vllm:request_prefill_time_seconds": (
        "histogram",
        "Histogram of time spent in PREFILL phase for request.",
    ),
    "vllm:request_decode_time_seconds": (
        "histogram",
        "Histogram of time spent in DECODE phase for request.",
    ),
}


def _histogram(engine: Engine, name: str) -> Histogram:
    return {
        "vllm:time_to_first_token_seconds": engine.ttft,
        "vllm:e2e_request_latency_seconds": engine.e2e,
        "vllm:request_queue_time_seconds": engine.queue,
        "vllm:request_inference_time_seconds": engine.inference,
        "vllm:request_prefill_time_seconds": engine.prefill,
        "vllm:request_decode_time_seconds": engine.decode,
    }[name]


def render_metrics(engines: Iterable[tuple[Mapping[str, str], Engine]]) -> str:
    """Prometheus text exposition (0.0.4) of `engines`, each with its labels (`model_name`,
    and more when several deployments share one page)."""
    rows = list(engines)
    out: list[str] = []
    for name, (kind, text) in HELP.items():
        out += [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
        for labels, engine in rows:
            if name == "vllm:num_requests_running":
                out.append(f"{name}{_labels(labels)} {_num(len(engine.scheduler.running))}")
            elif name == "vllm:num_requests_waiting":
                out.append(f"{name}{_labels(labels)} {_num(len(engine.scheduler.waiting))}")
            elif name in ("vllm:gpu_cache_usage_perc", "vllm:kv_cache_usage_perc"):
                out.append(f"{name}{_labels(labels)} {_num(engine.cache_usage())}")
            elif name == "vllm:prompt_tokens_total":
                out.append(f"{name}{_labels(labels)} {_num(engine.prompt_tokens)}")
            elif name == "vllm:generation_tokens_total":
                out.append(f"{name}{_labels(labels)} {_num(engine.generation_tokens)}")
            elif name == "vllm:request_success_total":
                for reason in sorted(engine.success):
                    extra = f'finished_reason="{reason}"'
                    out.append(f"{name}{_labels(labels, extra)} {_num(engine.success[reason])}")
            else:
                hist = _histogram(engine, name)
                for bound, n in zip(hist.buckets, hist.cumulative(), strict=True):
                    extra = f'le="{_num(bound)}"'
                    out.append(f"{name}_bucket{_labels(labels, extra)} {_num(n)}")
                out.append(f"{name}_bucket{_labels(labels, INF)} {_num(hist.count)}")
                out.append(f"{name}_sum{_labels(labels)} {_num(hist.total)}")
                out.append(f"{name}_count{_labels(labels)} {_num(hist.count)}")
    return "\n".join(out) + "\n"
