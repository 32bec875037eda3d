"""The fake vLLM's pure core: settings, the slot scheduler, request plans (its metrics are
`inference_metrics.py`).

No clock, no I/O: times are arguments. The HTTP edge (`autoscaler.fakecloud.inference_http`) sleeps
on the wall clock and calls in here. What lives here:
- `InferenceSettings`: token rate, prefill time, `max_num_seqs`, the inference key, faults;
- `SlotScheduler`: at most `capacity` requests run at once, the rest wait first in, first out
  (vLLM's running batch and waiting queue; capacity = serving replicas x max_num_seqs);
- `plan_request`: an OpenAI request body -> how many prompt and completion tokens, streaming or
  not, or a 400 in OpenAI's error shape;
- `Engine` and `render_metrics` (in `inference_metrics.py`): one deployment's counters and
  histograms under vLLM's own metric names (`vllm:num_requests_running`,
  `vllm:num_requests_waiting`, `vllm:gpu_cache_usage_perc`, `vllm:kv_cache_usage_perc`,
  `vllm:time_to_first_token_seconds`, `vllm:e2e_request_latency_seconds`,
  `vllm:request_queue_time_seconds` (WAITING), `vllm:request_inference_time_seconds`
  (RUNNING = `vllm:request_prefill_time_seconds` + `vllm:request_decode_time_seconds`),
  `vllm:prompt_tokens_total`, `vllm:generation_tokens_total`, `vllm:request_success_total`),
  each with `model_name`.
KV-cache usage is faked as the share of sequence slots in use: a request holds its slot, and a
vLLM batch at max_num_seqs is what fills the cache.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, fields
from typing import Any, Generic, Literal, TypeVar

K = TypeVar("K", bound=Hashable)
Kind = Literal["chat", "completion", "embedding"]

EMBEDDING_DIM = 8
WORDS = ("the", "model", "answers", "slowly", "one", "token", "at", "a", "time", "as", "set")


class InferenceSettingsError(ValueError):
    """A setting has a wrong name or value; the message names it."""


@dataclass
class InferenceSettings:
    """How every deployment of one simulator serves inference. Changed at run time with
    `POST /_sim/inference` (partial update, same names)."""

    token_rate: float = 50.0
    """Generated tokens per second per request (an 8B model on one H100 streams 50-100)."""
    ttft: float = 0.2
    """Prefill: seconds from a request's admission to its first token."""
    max_num_seqs: int = 256
    """Requests one replica runs at once (vLLM's default); the rest wait in its queue."""
    inference_key: str | None = None
    """The bearer key inference requests need; None: `default_inference_key`."""
    default_max_tokens: int = 16
    """Completion length when a request sets no max_tokens (OpenAI's completions default)."""
    max_model_len: int = 8192
    """Prompt + completion tokens one request may use; more is a 400, as in vLLM."""
    error_rate: float = 0.0
    """Probability that a request is answered `error_status` instead of served."""
    error_status: int = 500
    error_next: int = 0
    """The next N requests are answered `error_status` (a one-shot upstream failure)."""
    cut_after_chunks: int = 2
    """Where `cut_next` cuts: the connection closes after this many SSE chunks."""
    cut_next: int = 0
    """The next N streams are cut after `cut_after_chunks` chunks (an upstream dying mid-stream)."""

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        if not (math.isfinite(self.token_rate) and self.token_rate > 0):
            raise InferenceSettingsError(f"token_rate must be > 0, got {self.token_rate!r}")
        if not (math.isfinite(self.ttft) and self.ttft >= 0):
            raise InferenceSettingsError(f"ttft must be >= 0 seconds, got {self.ttft!r}")
        for name in ("max_num_seqs", "default_max_tokens", "max_model_len"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InferenceSettingsError(f"{name} must be an integer >= 1, got {value!r}")
        for name in ("error_next", "cut_after_chunks", "cut_next"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InferenceSettingsError(f"{name} must be an integer >= 0, got {value!r}")
        if not 0.0 <= self.error_rate <= 1.0:
            raise InferenceSettingsError(f"error_rate must be in [0, 1], got {self.error_rate!r}")
        if not 400 <= self.error_status <= 599:
            raise InferenceSettingsError(f"error_status must be 4xx or 5xx: {self.error_status}")
        if self.inference_key is not None and not self.inference_key:
            raise InferenceSettingsError("inference_key must be non-empty (or null)")

    def update(self, changes: Mapping[str, Any]) -> None:
        """Apply a partial update, all or nothing."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise InferenceSettingsError(
                f"unknown inference setting(s) {', '.join(unknown)} (known: {', '.join(known)})"
            )
        before = {name: getattr(self, name) for name in known}
        for name, value in changes.items():
            if isinstance(before[name], float) and isinstance(value, int):
                value = float(value)
            setattr(self, name, value)
        try:
            self.check()
        except (InferenceSettingsError, TypeError) as exc:
            for name, value in before.items():
                setattr(self, name, value)
            raise InferenceSettingsError(str(exc)) from exc

    def as_dict(self) -> dict[str, Any]:
        shown = {f.name: getattr(self, f.name) for f in fields(self)}
        shown["inference_key"] = None if self.inference_key is None else "***"
        return shown

    def take_error(self, roll: float) -> bool:
        """Whether this request gets the injected error (consumes one `error_next`)."""
        if self.error_next > 0:
            self.error_next -= 1
            return True
        return roll < self.error_rate

    def take_cut(self) -> int | None:
        """After how many chunks this stream is cut, or None (consumes one `cut_next`)."""
        if self.cut_next > 0:
            self.cut_next -= 1
            return self.cut_after_chunks
        return None


def default_inference_key(provider: str, api_token: str) -> str:
    """The key a simulator's inference takes when none is set: NeevCloud's inference keys are
    `sk-nc-*` keys distinct from the API access token (seed 001), so its simulator derives one
    (`sk-nc-<token>`); NetMind and Nebius-style document one bearer token for both."""
    return f"sk-nc-{api_token}" if provider == "neevcloud" else api_token


# --- the scheduler ----------------------------------------------------------------------------


class SlotScheduler(Generic[K]):
    """At most `capacity` requests run; the others wait in arrival order.

    Every call returns the requests it admitted (moved from waiting to running), oldest first:
    the edge wakes exactly those. A shrinking capacity never evicts a running request; it only
    stops admissions until enough finish."""

    def __init__(self, capacity: int = 0):
        self.capacity = max(0, capacity)
        self.running: dict[K, None] = {}  # insertion-ordered set
        self.waiting: deque[K] = deque()

    def __contains__(self, key: object) -> bool:
        return key in self.running or key in self.waiting

    def submit(self, key: K) -> bool:
        """Add a request; True when it runs at once, False when it waits."""
        if key in self:
            raise ValueError(f"request {key!r} was already submitted")
        if not self.waiting and len(self.running) < self.capacity:
            self.running[key] = None
            return True
        self.waiting.append(key)
        return False

    def release(self, key: K) -> list[K]:
        """A request finished, failed or was cancelled (running or waiting): forget it."""
        if key in self.running:
            del self.running[key]
        else:
            try:
                self.waiting.remove(key)
            except ValueError:
                return []
        return self._admit()

    def resize(self, capacity: int) -> list[K]:
        self.capacity = max(0, capacity)
        return self._admit()

    def _admit(self) -> list[K]:
        admitted: list[K] = []
        while self.waiting and len(self.running) < self.capacity:
            key = self.waiting.popleft()
            self.running[key] = None
            admitted.append(key)
        return admitted


# --- requests ---------------------------------------------------------------------------------


class BadRequest(ValueError):
    """A request vLLM would refuse with 400; `param` names the offending field."""

    def __init__(self, message: str, param: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param


def count_tokens(text: str) -> int:
    """The fake tokenizer: one token per whitespace-separated word (at least one)."""
    return max(1, len(text.split()))


def _text_of(value: Any, param: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return " ".join(value)
    if isinstance(value, list) and all(isinstance(v, int) for v in value):
        return " ".join("t" for _ in value)  # token ids: one token each
    raise BadRequest(f"{param} must be a string or a list of strings", param)


def _message_text(messages: Any) -> str:
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages must be a non-empty list", "messages")
    parts: list[str] = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise BadRequest(f"messages[{i}] must be an object with a role", "messages")
        content = message.get("content")
        if isinstance(content, list):  # content parts: keep the text ones
            content = " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
        parts.append(f"{message['role']} {content or ''}")
    return " ".join(parts)


@dataclass(frozen=True, slots=True)
class RequestPlan:
    kind: Kind
    model: str
    prompt_tokens: int
    completion_tokens: int  # 0 for embeddings
    stream: bool = False
    include_usage: bool = False
    inputs: int = 1  # embeddings: how many input vectors
    finish_reason: Literal["stop", "length"] = "stop"  # "length": it ran into max_tokens


def plan_request(kind: Kind, body: Mapping[str, Any], settings: InferenceSettings) -> RequestPlan:
    """What serving `body` takes, or BadRequest."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("model must be a non-empty string", "model")
    if kind == "embedding":
        raw = body.get("input")
        items = raw if isinstance(raw, list) and raw and not isinstance(raw[0], int) else [raw]
        texts = [_text_of(item, "input") for item in items]
        return RequestPlan(kind, model, sum(count_tokens(t) for t in texts), 0, inputs=len(texts))
    prompt = (
        _message_text(body.get("messages"))
        if kind == "chat"
        else _text_of(body.get("prompt"), "prompt")
    )
    prompt_tokens = count_tokens(prompt)
    limit_key = "max_completion_tokens" if body.get("max_completion_tokens") is not None else None
    limit_key = limit_key or "max_tokens"
    wanted = body.get(limit_key)
    if wanted is None:
        wanted = settings.default_max_tokens
    if isinstance(wanted, bool) or not isinstance(wanted, int) or wanted < 1:
        raise BadRequest(f"{limit_key} must be an integer >= 1", limit_key)
    if prompt_tokens + wanted > settings.max_model_len:
        raise BadRequest(
            f"This model's maximum context length is {settings.max_model_len} tokens. However, "
            f"you requested {prompt_tokens + wanted} tokens ({prompt_tokens} in the messages, "
            f"{wanted} in the completion).",
            limit_key,
        )
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise BadRequest("stream must be a boolean", "stream")
    options = body.get("stream_options") or {}
    if not isinstance(options, dict):
        raise BadRequest("stream_options must be an object", "stream_options")
    return RequestPlan(
        kind,
        model,
        prompt_tokens,
        wanted,
        stream=stream,
        include_usage=stream and bool(options.get("include_usage")),
        finish_reason="stop" if body.get(limit_key) is None else "length",
    )


def token_text(index: int) -> str:
    """The `index`-th generated token (with its leading space after the first)."""
    word = WORDS[index % len(WORDS)]
    return word if index == 0 else " " + word


def embedding(text_index: int, dim: int = EMBEDDING_DIM) -> list[float]:
    """A deterministic unit vector."""
    raw = [math.sin(text_index + 1.0 + k) for k in range(dim)]
    norm = math.sqrt(sum(x * x for x in raw)) or 1.0
    return [x / norm for x in raw]


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def openai_error(status: int, message: str, param: str | None = None) -> dict[str, Any]:
    """OpenAI's error body, as vLLM sends it."""
    kinds = {
        400: "BadRequestError",
        401: "AuthenticationError",
        404: "NotFoundError",
        429: "RateLimitError",
    }
    kind = kinds.get(status, "InternalServerError" if status >= 500 else "BadRequestError")
    code = {401: "invalid_api_key", 404: "model_not_found"}.get(status, str(status))
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}
