"""The fake vLLM's pure core: the slot scheduler (a Hypothesis state machine against a model),
request plans, settings updates, and the metrics page parsed by prometheus-client."""

from __future__ import annotations

from collections import deque
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from prometheus_client.parser import text_string_to_metric_families

from autoscaler.fakecloud.inference import (
    BadRequest,
    InferenceSettings,
    InferenceSettingsError,
    RequestPlan,
    SlotScheduler,
    default_inference_key,
    plan_request,
)
from autoscaler.fakecloud.inference_metrics import Engine, render_metrics

# --- the scheduler ----------------------------------------------------------------------------


class SchedulerMachine(RuleBasedStateMachine):
    """Submit, release (finish or cancel, running or waiting) and resize in any order: at most
    `capacity` admissions happen while under capacity, admission is first in first out, nobody is
    admitted twice, and nobody waits while a slot is free."""

    def __init__(self) -> None:
        super().__init__()
        self.s: SlotScheduler[int] = SlotScheduler(2)
        self.next = 0
        self.model_waiting: deque[int] = deque()
        self.model_running: set[int] = set()
        self.capacity = 2
        self.admission_order: list[int] = []
        self.submitted_order: list[int] = []

    def _fill(self) -> list[int]:
        out = []
        while self.model_waiting and len(self.model_running) < self.capacity:
            out.append(self.model_waiting[0])
            self.model_waiting.popleft()
            self.model_running.add(out[-1])
        return out

    @rule()
    def submit(self) -> None:
        self.next += 1
        key = self.next
        self.submitted_order.append(key)
        ran = self.s.submit(key)
        expect = not self.model_waiting and len(self.model_running) < self.capacity
        assert ran == expect
        if ran:
            self.model_running.add(key)
            self.admission_order.append(key)
        else:
            self.model_waiting.append(key)

    @precondition(lambda self: self.model_running)
    @rule(data=st.data())
    def finish_running(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(sorted(self.model_running)))
        self.model_running.discard(key)
        expected = self._fill()
        got = self.s.release(key)
        assert got == expected
        self.admission_order += got

    @precondition(lambda self: self.model_waiting)
    @rule(data=st.data())
    def cancel_waiting(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(list(self.model_waiting)))
        self.model_waiting.remove(key)
        assert self.s.release(key) == []  # a freed queue place admits nobody new
        self.submitted_order.remove(key)

    @rule(capacity=st.integers(0, 6))
    def resize(self, capacity: int) -> None:
        self.capacity = capacity
        expected = self._fill()
        got = self.s.resize(capacity)
        assert got == expected
        self.admission_order += got

    @rule()
    def release_unknown(self) -> None:
        assert self.s.release(-1) == []

    @invariant()
    def matches_the_model(self) -> None:
        assert set(self.s.running) == self.model_running
        assert list(self.s.waiting) == list(self.model_waiting)
        assert not (set(self.s.running) & set(self.s.waiting))
        # nobody waits while a slot is free
        assert not self.s.waiting or len(self.s.running) >= self.s.capacity
        # admitted once each, in submission order (cancelled ones removed)
        assert len(self.admission_order) == len(set(self.admission_order))
        order = [k for k in self.submitted_order if k in set(self.admission_order)]
        assert self.admission_order == order


TestSchedulerMachine = SchedulerMachine.TestCase


def test_a_shrinking_capacity_evicts_nobody() -> None:
    s: SlotScheduler[str] = SlotScheduler(3)
    assert [s.submit(k) for k in "abcd"] == [True, True, True, False]
    assert s.resize(1) == []
    assert list(s.running) == ["a", "b", "c"]
    assert s.release("a") == [] and s.release("b") == []
    assert s.release("c") == ["d"]
    with pytest.raises(ValueError, match="already submitted"):
        s.submit("d")


# --- request plans ----------------------------------------------------------------------------

SETTINGS = InferenceSettings(default_max_tokens=16, max_model_len=100)


def test_chat_plan_counts_prompt_words_and_uses_max_tokens() -> None:
    body = {
        "model": "m",
        "messages": [{"role": "user", "content": "one two three"}],
        "max_tokens": 7,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    plan = plan_request("chat", body, SETTINGS)
    assert plan == RequestPlan("chat", "m", 4, 7, True, True, 1, "length")
    default = plan_request("completion", {"model": "m", "prompt": "a b"}, SETTINGS)
    assert (default.completion_tokens, default.finish_reason, default.stream) == (16, "stop", False)


def test_embedding_plan_counts_inputs() -> None:
    plan = plan_request("embedding", {"model": "m", "input": ["a b", "c"]}, SETTINGS)
    assert (plan.prompt_tokens, plan.completion_tokens, plan.inputs) == (3, 0, 2)


@pytest.mark.parametrize(
    ("kind", "body", "param"),
    [
        ("chat", {"messages": [{"role": "user", "content": "x"}]}, "model"),
        ("chat", {"model": "m", "messages": []}, "messages"),
        ("chat", {"model": "m", "messages": [{"content": "x"}]}, "messages"),
        ("completion", {"model": "m", "prompt": 3}, "prompt"),
        ("completion", {"model": "m", "prompt": "x", "max_tokens": 0}, "max_tokens"),
        ("completion", {"model": "m", "prompt": "x", "max_tokens": 100}, "max_tokens"),
        ("completion", {"model": "m", "prompt": "x", "stream": "yes"}, "stream"),
    ],
)
def test_bad_requests_name_the_parameter(kind: str, body: dict[str, object], param: str) -> None:
    with pytest.raises(BadRequest) as info:
        plan_request(kind, body, SETTINGS)  # type: ignore[arg-type]
    assert info.value.param == param


@given(words=st.integers(1, 50), wanted=st.integers(1, 60))
def test_the_context_limit_is_prompt_plus_completion(words: int, wanted: int) -> None:
    body = {"model": "m", "prompt": " ".join(["w"] * words), "max_tokens": wanted}
    if words + wanted > SETTINGS.max_model_len:
        with pytest.raises(BadRequest, match="maximum context length"):
            plan_request("completion", body, SETTINGS)
    else:
        assert plan_request("completion", body, SETTINGS).prompt_tokens == words


# --- settings ---------------------------------------------------------------------------------


def test_settings_update_is_all_or_nothing() -> None:
    s = InferenceSettings()
    s.update({"token_rate": 10, "max_num_seqs": 4})
    assert (s.token_rate, s.max_num_seqs) == (10.0, 4)
    with pytest.raises(InferenceSettingsError, match="max_num_seqs must be an integer >= 1"):
        s.update({"token_rate": 99, "max_num_seqs": 0})
    assert (s.token_rate, s.max_num_seqs) == (10.0, 4)
    with pytest.raises(InferenceSettingsError, match="unknown inference setting"):
        s.update({"tokens_per_second": 5})
    with pytest.raises(InferenceSettingsError, match="ttft"):
        InferenceSettings(ttft=-1)
    assert s.as_dict()["inference_key"] is None
    s.update({"inference_key": "sk-secret"})
    assert s.as_dict()["inference_key"] == "***"


def test_one_shot_faults_are_consumed() -> None:
    s = InferenceSettings(error_next=1, cut_next=1, cut_after_chunks=3)
    assert s.take_error(0.99) and not s.take_error(0.99)
    assert s.take_cut() == 3 and s.take_cut() is None


def test_neevcloud_inference_keys_are_not_the_api_token() -> None:
    assert default_inference_key("neevcloud", "tok") == "sk-nc-tok"
    assert (
        default_inference_key("netmind", "tok") == default_inference_key("nebius", "tok") == "tok"
    )


# --- metrics ----------------------------------------------------------------------------------


def test_metrics_parse_with_prometheus_client_under_vllm_names() -> None:
    engine = Engine(scheduler=SlotScheduler(2))
    for key in (1, 2, 3):
        engine.scheduler.submit(key)
    plan = RequestPlan("chat", 'we"ird\\model', 5, 3, finish_reason="length")
    engine.first_token(10.0, 10.05)
    engine.finished(plan, 3, 10.0, 11.0)
    engine.aborted(plan, 1)
    text = render_metrics([({"model_name": 'we"ird\\model'}, engine)])
    families = {f.name: f for f in text_string_to_metric_families(text)}
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in families.values()
        for s in f.samples
    }
    label = (("model_name", 'we"ird\\model'),)
    assert samples[("vllm:num_requests_running", label)] == 2
    assert samples[("vllm:num_requests_waiting", label)] == 1
    assert samples[("vllm:gpu_cache_usage_perc", label)] == 1.0
    assert samples[("vllm:kv_cache_usage_perc", label)] == 1.0
    assert samples[("vllm:prompt_tokens_total", label)] == 10
    assert samples[("vllm:generation_tokens_total", label)] == 4
    success = (("finished_reason", "length"), *label)
    assert samples[("vllm:request_success_total", success)] == 1
    assert families["vllm:time_to_first_token_seconds"].type == "histogram"
    ttft_count = samples[("vllm:time_to_first_token_seconds_count", label)]
    e2e_sum = samples[("vllm:e2e_request_latency_seconds_sum", label)]
    assert (ttft_count, e2e_sum) == (1, 1.0)
    le_01 = (("le", "0.06"), *label)
    assert samples[("vllm:time_to_first_token_seconds_bucket", le_01)] == 1
    assert samples[("vllm:time_to_first_token_seconds_bucket", (("le", "0.04"), *label))] == 0
    assert families["vllm:prompt_tokens"].type == "counter"


FIXTURE = Path(__file__).resolve().parents[1] / "sources" / "fixtures" / "vllm_metrics.txt"
PHASES = ("queue", "inference", "prefill", "decode")


def _fixture_bounds(metric: str) -> list[str]:
    """The `le` bounds of `metric` on engine 0 of the real vLLM exposition."""
    prefix = f'{metric}_bucket{{engine="0",le="'
    return [
        line[len(prefix) :].split('"', 1)[0]
        for line in FIXTURE.read_text().splitlines()
        if line.startswith(prefix)
    ]


def test_phase_histograms_split_a_request_that_waited_then_ran() -> None:
    """vLLM's WAITING / RUNNING (= PREFILL + DECODE) histograms, observed when a request
    finishes: one that waited 1.2 s, prefilled 0.2 s and decoded 2 s, and one that ran at once
    (its first token 0.1 s after arriving, done 0.5 s after)."""
    engine = Engine(scheduler=SlotScheduler(1))
    plan = RequestPlan("chat", "m", 5, 3)
    engine.finished(plan, 3, 10.0, 13.4, 11.2, 11.4)
    engine.finished(plan, 3, 20.0, 20.5, None, 20.1)
    engine.aborted(plan, 1)  # an aborted request is no finished one: not observed
    text = render_metrics([({"model_name": "m"}, engine)])
    families = {f.name: f for f in text_string_to_metric_families(text)}
    samples = {(s.name, s.labels.get("le")): s.value for f in families.values() for s in f.samples}
    helps = {
        "queue": "Histogram of time spent in WAITING phase for request.",
        "inference": "Histogram of time spent in RUNNING phase for request.",
        "prefill": "Histogram of time spent in PREFILL phase for request.",
        "decode": "Histogram of time spent in DECODE phase for request.",
    }
    for phase in PHASES:
        name = f"vllm:request_{phase}_time_seconds"
        assert families[name].type == "histogram"
        assert families[name].documentation == helps[phase]
        assert f"# HELP {name} {helps[phase]}" in text
        assert samples[(name + "_count", None)] == 2
        assert samples[(name + "_bucket", "+Inf")] == 2
    # the real vLLM's bounds (the fixture has no inference-time family: it shares them)
    bounds = _fixture_bounds("vllm:request_queue_time_seconds")
    assert len(bounds) == 22
    for phase in PHASES:
        name = f"vllm:request_{phase}_time_seconds"
        mine = [line.split('le="', 1)[1].split('"', 1)[0] for line in text.splitlines()
                if line.startswith(name + "_bucket")]  # fmt: skip
        assert [float(b) for b in mine] == [float(b) for b in bounds], phase
        if phase != "inference":
            assert _fixture_bounds(name) == bounds

    def at(phase: str, le: str) -> float:
        return samples[(f"vllm:request_{phase}_time_seconds_bucket", le)]

    def total(phase: str) -> float:
        return samples[(f"vllm:request_{phase}_time_seconds_sum", None)]

    # WAITING: 0 (ran at once) and 1.2 s
    assert (at("queue", "0.3"), at("queue", "1.0"), at("queue", "1.5")) == (1, 1, 2)
    assert total("queue") == pytest.approx(1.2)
    # RUNNING: 0.5 s (arrival to done) and 2.2 s (admission to done, not arrival)
    assert (at("inference", "0.5"), at("inference", "2.0"), at("inference", "2.5")) == (1, 1, 2)
    assert total("inference") == pytest.approx(2.7)
    # PREFILL: 0.1 s and 0.2 s; DECODE: 0.4 s and 2.0 s (a bound is inclusive, as Prometheus')
    assert at("prefill", "0.3") == 2 and total("prefill") == pytest.approx(0.3)
    assert (at("decode", "0.3"), at("decode", "0.5"), at("decode", "2.0")) == (0, 1, 2)
    assert total("decode") == pytest.approx(2.4)
