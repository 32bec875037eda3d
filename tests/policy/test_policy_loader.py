"""Loading: defaults, shorthands, multi-document files, folders and globs, immutability."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from autoscaler.core.zero import zero_enabled
from autoscaler.policy.loader import (
    ValidationFailed,
    load_daemon_config,
    load_policies,
    load_policy_file,
    load_policy_text,
)
from autoscaler.policy.model import (
    Behavior,
    OnDeploymentFailure,
    OnMetricFailure,
    Panic,
    PrometheusSource,
    PromQLSource,
    RatePolicy,
    RedisSource,
    SecretRef,
    default_scale_down,
    default_scale_up,
)
from autoscaler.policy.yamlnodes import MAX_TEXT

from .test_policy_errors import BASE


def policy_text(name: str = "chat", extra: str = "", deployment: str = "chat") -> str:
    text = BASE.replace("name: chat\n", f"name: {name}\n", 1)
    text = text.replace("name: chat}", f"name: {deployment}}}")
    return text + extra


def test_defaults_are_the_hpa_defaults() -> None:
    (policy,) = load_policy_text(BASE)
    assert policy.interval == 15.0
    assert policy.behavior == Behavior()
    assert policy.behavior.scale_up == default_scale_up()
    assert policy.behavior.scale_down == default_scale_down()
    assert policy.behavior.tolerance.up == policy.behavior.tolerance.down == 0.1
    assert policy.behavior.panic is None
    assert policy.scale_to_zero is None
    assert policy.on_metric_failure == OnMetricFailure(after=3, action="hold", replicas=None)
    assert policy.on_deployment_failure == OnDeploymentFailure("report", 60.0, 1800.0)
    assert policy.schedules == ()
    assert policy.cost.replica_hourly_usd is None and policy.cost.max_hourly_usd is None
    assert policy.dry_run is False and policy.paused is False
    assert policy.deployment.create is None
    source = policy.metrics[0].source
    assert isinstance(source, PrometheusSource)
    assert source.aggregate == "sum" and source.on_empty == "error" and source.timeout == 5.0
    assert source.urls == ("http://gw:8000/metrics",)
    assert policy.source_file == "<string>"


def test_replicas_min_defaults_to_one() -> None:
    (policy,) = load_policy_text(BASE.replace("{min: 1, max: 4}", "{max: 4}"))
    assert policy.replicas.min == 1


def test_partial_scaling_rules_keep_the_direction_defaults() -> None:
    extra = "behavior:\n  scale_up: {cooldown: 1m}\n  scale_down: {select: disabled}\n"
    (policy,) = load_policy_text(BASE + extra)
    up, down = policy.behavior.scale_up, policy.behavior.scale_down
    assert up.cooldown == 60.0 and up.stabilization_window == 0.0
    assert up.policies == default_scale_up().policies
    assert down.select == "disabled" and down.stabilization_window == 300.0
    assert down.policies == (RatePolicy("percent", 100, 15.0),)


def test_tolerance_number_or_up_down() -> None:
    (one,) = load_policy_text(BASE + "behavior: {tolerance: 0.2}\n")
    assert (one.behavior.tolerance.up, one.behavior.tolerance.down) == (0.2, 0.2)
    (two,) = load_policy_text(BASE + "behavior: {tolerance: {up: 0.05}}\n")
    assert (two.behavior.tolerance.up, two.behavior.tolerance.down) == (0.05, 0.1)


def test_on_metric_failure_actions() -> None:
    (hold,) = load_policy_text(BASE + "on_metric_failure: {after: 2, action: hold}\n")
    assert hold.on_metric_failure == OnMetricFailure(after=2, action="hold", replicas=None)
    (fallback,) = load_policy_text(BASE + "on_metric_failure: {action: {replicas: 3}}\n")
    assert fallback.on_metric_failure == OnMetricFailure(after=3, action="replicas", replicas=3)


def test_panic_and_durations() -> None:
    (policy,) = load_policy_text(BASE + "interval: 1m30s\nbehavior:\n  panic: {hold: 2m}\n")
    assert policy.interval == 90.0
    assert policy.behavior.panic == Panic(threshold=2.0, hold=120.0)


def test_every_source_type_and_secrets() -> None:
    extra = """\
  - name: kv
    source:
      type: promql
      url: http://prom:9090
      query: avg(x)
      basic_auth: {username: reader, password: {file: prom_password}}
    target: {type: utilization, value: 0.8}
  - name: queue
    source: {type: redis, url: "redis://q:6379/0", key: jobs, mode: lag, group: g,
             password: {env: REDIS_PASSWORD}}
    target: {type: average_value, value: 20}
  - name: rabbit
    source: {type: rabbitmq, url: "amqp://guest@q:5672/", queue: jobs, include_unacked: true,
             management_url: "http://q:15672"}
    target: {type: value, value: 100}
  - name: nats
    source: {type: nats, url: "nats://n:4222", stream: jobs, consumer: workers,
             include_ack_pending: true, token: {env: NATS_TOKEN}}
    target: {type: average_value, value: 10}
  - name: api
    source: {type: http_json, url: "https://api.internal/q", path: data.queue.depth,
             headers: {X-Team: ml}, bearer_token: {env: API_TOKEN}, timeout: 2s}
    target: {type: average_value, value: 10}
  - name: replicas
    source: {type: prometheus, urls: ["http://r0:8000/metrics", "http://r1:8000/metrics"],
             metric: "vllm:num_requests_running", labels_regex: {model_name: "llama.*"},
             aggregate: max, quantile: 0.95, on_empty: zero}
    target: {type: average_value, value: 10}
"""
    (policy,) = load_policy_text(BASE + extra)
    by_name = {m.name: m.source for m in policy.metrics}
    promql = by_name["kv"]
    assert isinstance(promql, PromQLSource)
    assert promql.basic_auth is not None
    assert promql.basic_auth.password == SecretRef(file="prom_password")
    redis = by_name["queue"]
    assert isinstance(redis, RedisSource)
    assert (redis.mode, redis.group, redis.password) == (
        "lag",
        "g",
        SecretRef(env="REDIS_PASSWORD"),
    )
    assert by_name["rabbit"].type == "rabbitmq"
    assert by_name["nats"].type == "nats"
    api = by_name["api"]
    assert api.type == "http_json" and api.timeout == 2.0
    assert dict(api.headers) == {"X-Team": "ml"}
    prom = by_name["replicas"]
    assert isinstance(prom, PrometheusSource)
    assert prom.urls == ("http://r0:8000/metrics", "http://r1:8000/metrics")
    assert (prom.aggregate, prom.quantile, prom.on_empty) == ("max", 0.95, "zero")


def test_create_is_frozen_recursively() -> None:
    # Keys of no known provider: no provider's rules apply, the spec is kept as written.
    text = BASE.replace(
        "name: chat}",
        "name: chat, create: {size: 1, serving: {max_model_len: 8192}, args: [--a, --b]}}",
    )
    (policy,) = load_policy_text(text)
    create = policy.deployment.create
    assert create is not None
    assert create["serving"]["max_model_len"] == 8192
    assert create["args"] == ("--a", "--b")
    with pytest.raises(TypeError):
        create["size"] = 2  # type: ignore[index]
    with pytest.raises(TypeError):
        create["serving"]["max_model_len"] = 1  # type: ignore[index]


def test_scale_to_zero_policy() -> None:
    text = (
        BASE.replace("{min: 1, max: 4}", "{min: 0, max: 4}").replace(
            "name: chat}", "name: chat, create: {gpu_count: 1}}"
        )
        + "scale_to_zero: {after: 10m, activation: [{metric: waiting, threshold: 1}]}\n"
    )
    (policy,) = load_policy_text(text)
    assert policy.scale_to_zero is not None
    assert policy.scale_to_zero.after == 600.0
    assert policy.scale_to_zero.activation[0].threshold == 1.0


def test_scale_to_zero_is_kept_and_unused_while_min_is_above_zero() -> None:
    # The reference policy's shape: the block is "used only when replicas.min is 0", so a
    # user can switch scale to zero off by raising min without deleting its settings.
    text = BASE + "scale_to_zero: {after: 10m, activation: [{metric: waiting, threshold: 1}]}\n"
    (policy,) = load_policy_text(text)
    assert policy.replicas.min == 1
    assert policy.scale_to_zero is not None
    assert zero_enabled(policy) is None


def test_multi_document_file() -> None:
    text = policy_text("one", deployment="d1") + "---\n" + policy_text("two", deployment="d2")
    text += "---\n# trailing empty document\n"
    policies = load_policy_text(text, "multi.yaml")
    assert [p.name for p in policies] == ["one", "two"]
    assert all(p.source_file == "multi.yaml" for p in policies)


def test_errors_of_later_documents_have_file_lines() -> None:
    text = policy_text("one", deployment="d1") + "---\n" + policy_text("two", deployment="d2")
    text = text.replace("value: 5}", "value: 0}")
    with pytest.raises(ValidationFailed) as caught:
        load_policy_text(text, "multi.yaml")
    assert [(e.line, e.path) for e in caught.value.errors] == [
        (7, "metrics[0].target.value"),
        (15, "metrics[0].target.value"),
    ]


def test_duplicate_policy_names_in_one_file() -> None:
    text = policy_text("same", deployment="d1") + "---\n" + policy_text("same", deployment="d2")
    with pytest.raises(ValidationFailed) as caught:
        load_policy_text(text, "p.yaml")
    assert [str(e) for e in caught.value.errors] == [
        'p.yaml:9:7: name: duplicate policy name "same" (also in p.yaml:1)'
    ]


def test_two_policies_cannot_scale_the_same_deployment() -> None:
    text = policy_text("one", deployment="d") + "---\n" + policy_text("two", deployment="d")
    with pytest.raises(ValidationFailed) as caught:
        load_policy_text(text, "p.yaml")
    assert [str(e) for e in caught.value.errors] == [
        'p.yaml:10:46: deployment.name: deployment "d" at "neevcloud-prod" is already scaled '
        'by policy "one" (p.yaml)'
    ]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_folders_globs_and_files(tmp_path: Path) -> None:
    write(tmp_path / "a" / "2.yaml", policy_text("two", deployment="d2"))
    write(tmp_path / "a" / "1.yml", policy_text("one", deployment="d1"))
    write(tmp_path / "a" / "notes.txt", "not a policy")
    write(tmp_path / "b" / "x.yaml", policy_text("three", deployment="d3"))
    single = write(tmp_path / "c.yaml", policy_text("four", deployment="d4"))

    assert [p.name for p in load_policies([tmp_path / "a"])] == ["one", "two"]
    assert [p.name for p in load_policies(str(tmp_path / "*" / "*.yaml"))] == ["two", "three"]
    assert [p.name for p in load_policy_file(single)] == ["four"]
    # A file named twice (directly and through its folder) is read once.
    both = load_policies([tmp_path / "a", tmp_path / "a" / "1.yml", single])
    assert [p.name for p in both] == ["one", "two", "four"]
    assert both[0].source_file == str(tmp_path / "a" / "1.yml")


def test_errors_of_all_files_at_once_and_names_unique_across_files(tmp_path: Path) -> None:
    write(tmp_path / "1.yaml", policy_text("same", deployment="d1"))
    write(tmp_path / "2.yaml", policy_text("same", deployment="d2"))
    write(
        tmp_path / "3.yaml",
        BASE.replace("max: 4", "max: 0")
        .replace("name: chat}", "name: x}")
        .replace("name: chat\n", "name: other\n"),
    )
    with pytest.raises(ValidationFailed) as caught:
        load_policies([tmp_path])
    assert [str(e) for e in caught.value.errors] == [
        f'{tmp_path}/2.yaml:1:7: name: duplicate policy name "same" (also in {tmp_path}/1.yaml:1)',
        f"{tmp_path}/3.yaml:3:25: replicas.max: must be >= 1 and <= 10000, got 0",
    ]


def test_unreadable_and_missing_paths(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"name: x\n\xff\xfe\x00")
    with pytest.raises(ValidationFailed) as caught:
        load_policies(
            [
                tmp_path / "missing.yaml",
                tmp_path / "empty",
                str(tmp_path / "nothing-*.yaml"),
                binary,
            ]
        )
    assert [str(e) for e in caught.value.errors] == [
        f"{tmp_path}/empty:1:1: (file): folder holds no *.yaml or *.yml file",
        f"{tmp_path}/nothing-*.yaml:1:1: (file): pattern matches no file",
        f"{tmp_path}/missing.yaml:1:1: (file): cannot read: No such file or directory",
        f"{binary}:2:1: (root): not UTF-8 text: byte 0xff",
    ]


def test_a_path_the_os_refuses_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    # The daemon config's `policies` (or an argument) may be too long or hold a NUL byte.
    too_long = str(tmp_path / ("x" * 300) / "p.yaml")
    with pytest.raises(ValidationFailed) as caught:
        load_policies([too_long, "poli\0cies", str(tmp_path / ("y" * 300) / "*.yaml")])
    assert [str(e) for e in caught.value.errors] == [
        f"{too_long}:1:1: (file): cannot read: File name too long",
        '"poli\\u0000cies":1:1: (file): a path cannot hold a NUL byte',
        f"{tmp_path}/{'y' * 300}/*.yaml:1:1: (file): cannot read: File name too long",
    ]


def test_no_paths_is_an_error() -> None:
    with pytest.raises(ValidationFailed):
        load_policies([])


def test_non_string_text_is_a_validation_error() -> None:
    with pytest.raises(ValidationFailed):
        load_policy_text(b"name: x")  # type: ignore[arg-type]


def test_crontab_weekday_numbers_include_sunday_as_7() -> None:
    text = BASE + 'schedules:\n  - {cron: "0 8 * * 1-5,7", duration: 1h, min: 2}\n'
    (policy,) = load_policy_text(text)
    assert policy.schedules[0].cron == "0 8 * * 1-5,7"
    assert policy.schedules[0].timezone == "UTC"


# --- files that are not plain files ---------------------------------------------------------


def _load_in_thread(path: Path, load: Callable[[Path], object] | None = None) -> list[str]:
    """The errors of loading `path`, from a thread: a hang fails the test, it never hangs it.

    If the load is still blocked after a generous bound (a FIFO with no writer blocks in
    open()), a writer is opened and closed to release it, then the test fails."""
    errors: list[str] = []

    def run() -> None:
        try:
            (load or load_policy_file)(path)
        except ValidationFailed as exc:
            errors.extend(str(e) for e in exc.errors)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(30)
    if thread.is_alive():
        with contextlib.suppress(OSError):
            os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
        thread.join(10)
        pytest.fail(f"loading {path} hung")
    return errors


@pytest.mark.parametrize("via_symlink", [False, True])
def test_a_fifo_is_refused_and_never_hangs(tmp_path: Path, via_symlink: bool) -> None:
    fifo = tmp_path / "policy.yaml"
    os.mkfifo(fifo)
    path = fifo
    if via_symlink:
        path = tmp_path / "link.yaml"
        path.symlink_to(fifo)
    errors = _load_in_thread(path)
    assert errors == [f"{path}:1:1: (file): is not a regular file (a FIFO)"]


def test_a_device_is_refused_before_reading(tmp_path: Path) -> None:
    # /dev/zero is used as a device, not read as data: the loader must refuse it unread.
    if not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero here")
    link = tmp_path / "zero.yaml"
    link.symlink_to("/dev/zero")
    errors = _load_in_thread(link)
    assert errors == [f"{link}:1:1: (file): is not a regular file (a character device)"]


def test_a_file_past_the_cap_is_refused_unread(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    with big.open("wb") as f:
        f.truncate(MAX_TEXT * 64)  # sparse: no disk used, and never read
    errors = _load_in_thread(big)
    assert errors == [
        f"{big}:1:1: (file): file too large ({MAX_TEXT * 64} bytes, at most {MAX_TEXT})"
    ]


def test_the_daemon_config_file_is_read_the_same_way(tmp_path: Path) -> None:
    fifo = tmp_path / "config.yaml"
    os.mkfifo(fifo)
    errors = _load_in_thread(fifo, load_daemon_config)
    assert errors == [f"{fifo}:1:1: (file): is not a regular file (a FIFO)"]
