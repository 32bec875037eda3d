"""The Prometheus Recorder: names, labels, one increment per reason, removal of a policy."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from autoscaler.runtime.metrics import METRIC_NAMES, Metrics, MetricsRegistry
from autoscaler.runtime.protocols import Recorder


def sample(m: Metrics, name: str, **labels: str) -> float | None:
    return m.registry.get_sample_value(name, labels)


def test_is_a_recorder_and_uses_its_own_registry() -> None:
    recorder: Recorder = Metrics()
    assert isinstance(recorder, Metrics)
    reg = CollectorRegistry()
    assert Metrics(reg).registry is reg
    # Two instances never collide (each has its own registry by default).
    Metrics()
    Metrics()


def test_replicas_and_dry_run_gauges() -> None:
    m = Metrics()
    m.replicas("chat", desired=5, current=3)
    m.dry_run("chat", True)
    assert sample(m, "autoscaler_desired_replicas", policy="chat") == 5
    assert sample(m, "autoscaler_current_replicas", policy="chat") == 3
    assert sample(m, "autoscaler_dry_run", policy="chat") == 1
    m.dry_run("chat", False)
    assert sample(m, "autoscaler_dry_run", policy="chat") == 0


def test_one_decision_increment_per_reason() -> None:
    m = Metrics()
    m.decision("chat", "scale", ("scale_up", "panic"))
    m.decision("chat", "scale", ("scale_up",))
    m.decision("chat", "none", ())
    total = "autoscaler_decisions_total"
    assert sample(m, total, policy="chat", action="scale", reason="scale_up") == 2
    assert sample(m, total, policy="chat", action="scale", reason="panic") == 1
    assert sample(m, total, policy="chat", action="none", reason="none") == 1


def test_evaluation_lag_histogram_and_last_gauge() -> None:
    m = Metrics()
    m.evaluation("chat", seconds=0.02, lag=0.3)
    m.evaluation("chat", seconds=0.04, lag=-0.01)  # early start counts as no lag
    assert sample(m, "autoscaler_evaluation_duration_seconds_count", policy="chat") == 2
    assert sample(m, "autoscaler_evaluation_duration_seconds_sum", policy="chat") == 0.06
    assert sample(m, "autoscaler_evaluation_lag_seconds_count", policy="chat") == 2
    assert sample(m, "autoscaler_evaluation_lag_seconds_bucket", policy="chat", le="0.25") == 1
    assert sample(m, "autoscaler_evaluation_last_lag_seconds", policy="chat") == 0


def test_scale_from_zero_histogram() -> None:
    m = Metrics()
    m.scale_from_zero("batch", 42.0)
    assert sample(m, "autoscaler_scale_from_zero_seconds_count", policy="batch") == 1
    assert sample(m, "autoscaler_scale_from_zero_seconds_bucket", policy="batch", le="60.0") == 1
    assert sample(m, "autoscaler_scale_from_zero_seconds_bucket", policy="batch", le="30.0") == 0


def test_provider_requests_by_status_and_error() -> None:
    m = Metrics()
    m.provider_request("neev", "scale", 200, 0.1)
    m.provider_request("neev", "scale", 429, 0.05)
    m.provider_request("neev", "scale", None, 10.0)
    total = "autoscaler_provider_requests_total"
    assert sample(m, total, provider="neev", operation="scale", status="200") == 1
    assert sample(m, total, provider="neev", operation="scale", status="429") == 1
    assert sample(m, total, provider="neev", operation="scale", status="error") == 1
    count = "autoscaler_provider_request_duration_seconds_count"
    assert sample(m, count, provider="neev", operation="scale") == 3


def test_source_reads_and_errors() -> None:
    m = Metrics()
    m.source_read("chat", "waiting", "prometheus", 0.01, ok=True)
    labels = {"policy": "chat", "metric": "waiting", "type": "prometheus"}
    assert sample(m, "autoscaler_source_errors_total", **labels) == 0
    m.source_read("chat", "waiting", "prometheus", 5.0, ok=False)
    assert sample(m, "autoscaler_source_errors_total", **labels) == 1
    assert sample(m, "autoscaler_source_read_duration_seconds_count", **labels) == 2


def test_leadership() -> None:
    m = Metrics()
    m.leadership(True, 7)
    assert sample(m, "autoscaler_is_leader") == 1
    assert sample(m, "autoscaler_leader_epoch") == 7
    m.leadership(False, 7)
    assert sample(m, "autoscaler_is_leader") == 0


def test_policy_removed_drops_only_that_policy() -> None:
    m = Metrics()
    for policy in ("chat", "batch"):
        m.replicas(policy, 2, 1)
        m.decision(policy, "scale", ("scale_up",))
        m.evaluation(policy, 0.01, 0.0)
        m.scale_from_zero(policy, 3.0)
        m.dry_run(policy, False)
        m.source_read(policy, "waiting", "prometheus", 0.01, ok=False)
    m.provider_request("neev", "get", 200, 0.01)
    m.policy_removed("chat")
    m.policy_removed("chat")  # idempotent
    text = generate_latest(m.registry).decode()
    assert 'policy="chat"' not in text
    assert 'policy="batch"' in text
    assert sample(m, "autoscaler_desired_replicas", policy="batch") == 2
    assert (
        sample(
            m, "autoscaler_provider_requests_total", provider="neev", operation="get", status="200"
        )
        == 1
    )
    # A policy that comes back starts from fresh series.
    m.decision("chat", "none", ("within_tolerance",))
    total = "autoscaler_decisions_total"
    assert sample(m, total, policy="chat", action="scale", reason="scale_up") is None
    assert sample(m, total, policy="chat", action="none", reason="within_tolerance") == 1


def test_exposition_names_match_the_published_list() -> None:
    m = Metrics()
    m.replicas("p", 1, 1)
    m.decision("p", "none", ("stable",))
    m.evaluation("p", 0.1, 0.1)
    m.scale_from_zero("p", 1.0)
    m.dry_run("p", False)
    m.provider_request("x", "get", 200, 0.1)
    m.source_read("p", "m", "redis", 0.1, ok=True)
    m.leadership(True, 1)
    m.outcome("p", "none", "no_action")
    m.observed("p", "ready", 1, {"m": 1.0}, {"m": 2.0}, 1.0)
    families = list(text_string_to_metric_families(generate_latest(m.registry).decode()))
    exposed = set()
    for family in families:
        if family.name.startswith(("process_", "python_")):
            continue  # the standard process collectors
        for s in family.samples:
            name = s.name
            for suffix in ("_bucket", "_sum", "_count", "_created"):
                if family.type == "histogram" and name.endswith(suffix):
                    name = name[: -len(suffix)]
            if name.endswith("_created"):
                continue
            exposed.add(name)
    assert exposed == set(METRIC_NAMES)
    assert all(n.startswith("autoscaler_") for n in METRIC_NAMES)


def test_own_registry_carries_process_metrics() -> None:
    m = Metrics()
    assert m.registry.get_sample_value("process_resident_memory_bytes") is not None or (
        # /proc is Linux-only; elsewhere the collector exports nothing
        not __import__("os").path.exists("/proc/self/stat")
    )
    assert "python_info" in generate_latest(m.registry).decode()
    # A registry passed in is not touched.
    assert "python_info" not in generate_latest(Metrics(CollectorRegistry()).registry).decode()


def parsed(text: str) -> set[tuple[str, tuple[tuple[str, str], ...], float]]:
    return {
        (s.name, tuple(sorted(s.labels.items())), s.value)
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if not f.name.startswith(("process_", "python_"))
    }


def test_direct_text_writer_matches_prometheus_client() -> None:
    m = Metrics()
    m.replicas("chat", 5, 3)
    m.decision("chat", "scale", ("scale_up", "panic"))
    m.evaluation("chat", 0.25, 0.1)  # exactly on a bucket edge: counted in le="0.25"
    m.evaluation("chat", 99.0, 20.0)  # above every bucket: only +Inf
    m.scale_from_zero("batch", 61.0)
    m.provider_request("neev", "scale", None, 0.5)
    m.source_read('we"ird\\pol\nicy', "waiting", "prometheus", 0.01, ok=False)
    m.leadership(True, 4)
    registry = m.registry
    assert isinstance(registry, MetricsRegistry)
    fast = registry.render_text().decode()
    generic = generate_latest(registry).decode()
    assert parsed(fast) == parsed(generic)
    assert "process_resident_memory_bytes" in fast
    le = "autoscaler_evaluation_duration_seconds_bucket"
    assert sample(m, le, policy="chat", le="0.25") == 1
    assert sample(m, le, policy="chat", le="30.0") == 1
    assert sample(m, le, policy="chat", le="+Inf") == 2


def test_unlabelled_gauges_exist_from_the_start() -> None:
    m = Metrics()
    assert sample(m, "autoscaler_is_leader") == 0
    assert sample(m, "autoscaler_leader_epoch") == 0


def test_many_policies_removed_quickly() -> None:
    m = Metrics()
    for i in range(2000):
        m.decision(f"p{i}", "none", ("within_tolerance",))
        m.source_read(f"p{i}", "w", "redis", 0.01, ok=True)
        m.replicas(f"p{i}", 1, 1)
    for i in range(2000):
        m.policy_removed(f"p{i}")
    assert all(not f.series for f in m.families if f.label_names[:1] == ("policy",))


def test_values_targets_status_cost_and_build_info() -> None:
    import math
    import platform

    from autoscaler import __version__
    from autoscaler.core import COMPILED

    m = Metrics()
    m.observed("chat", "ready", 2, {"waiting": 7.0, "kv": None}, {"waiting": 5.0, "kv": 0.8}, 6.5)
    assert sample(m, "autoscaler_metric_value", policy="chat", metric="waiting") == 7.0
    failed = sample(m, "autoscaler_metric_value", policy="chat", metric="kv")
    assert failed is not None and math.isnan(failed)  # a failed read is NaN, not a made-up 0
    assert sample(m, "autoscaler_metric_target", policy="chat", metric="kv") == 0.8
    assert sample(m, "autoscaler_ready_replicas", policy="chat") == 2
    assert sample(m, "autoscaler_hourly_cost_usd", policy="chat") == 6.5
    assert sample(m, "autoscaler_deployment_status", policy="chat", status="ready") == 1
    assert sample(m, "autoscaler_deployment_status", policy="chat", status="absent") == 0
    m.observed("chat", "absent", 0, {"waiting": 0.0}, {"waiting": 5.0}, None)
    assert sample(m, "autoscaler_deployment_status", policy="chat", status="ready") == 0
    assert sample(m, "autoscaler_deployment_status", policy="chat", status="absent") == 1
    assert sample(m, "autoscaler_hourly_cost_usd", policy="chat") == 6.5  # no price: untouched
    python = platform.python_version()
    core = "compiled" if COMPILED else "interpreted"  # the sources, unless run on a build
    labels = {"version": __version__, "python": python, "core": core}
    assert sample(m, "autoscaler_build_info", **labels) == 1
    m.policy_removed("chat")
    text = generate_latest(m.registry).decode()
    assert 'policy="chat"' not in text


def test_outcomes_tell_executed_from_not_executed() -> None:
    m = Metrics()
    m.outcome("chat", "scale", "executed")
    m.outcome("chat", "scale", "standby")
    m.outcome("chat", "scale", "standby")
    total = "autoscaler_decision_outcomes_total"
    assert sample(m, total, policy="chat", action="scale", outcome="executed") == 1
    assert sample(m, total, policy="chat", action="scale", outcome="standby") == 2
