"""Table tests of validation errors: exact `FILE:LINE:COL: key.path: message` lines.

Each case edits a small valid policy (BASE) and lists every error line expected, so both
the location and the wording (bad value + what is allowed) are pinned down.
"""

from __future__ import annotations

import pytest

from autoscaler.policy.loader import ValidationFailed, load_policy_text

BASE = """\
name: chat
deployment: {provider: neevcloud-prod, name: chat}
replicas: {min: 1, max: 4}
metrics:
  - name: waiting
    source: {type: prometheus, url: "http://gw:8000/metrics", metric: "vllm:num_requests_waiting"}
    target: {type: average_value, value: 5}
"""
PROM = '{type: prometheus, url: "http://gw:8000/metrics", metric: "vllm:num_requests_waiting"}'
POLICY_KEYS = (
    "[name, deployment, replicas, interval, metrics, behavior, scale_to_zero, "
    "on_metric_failure, on_deployment_failure, schedules, cost, dry_run, paused, gateway, "
    "objective]"
)


def with_source(source: str) -> str:
    return BASE.replace(PROM, source)


CASES: list[tuple[str, str, list[str]]] = [
    (
        "enum value",
        BASE.replace('metric: "vllm', 'aggregate: total, metric: "vllm'),
        ['6:74: metrics[0].source.aggregate: must be one of [sum, avg, max, min], got "total"'],
    ),
    (
        "missing required key",
        BASE.replace("name: chat\n", "", 1),
        ['1:1: (root): missing required key "name"'],
    ),
    (
        "unknown key with a hint",
        BASE + "behavior:\n  tolerence: 0.1\n",
        ['9:3: behavior.tolerence: unknown key "tolerence" (did you mean "tolerance"?)'],
    ),
    (
        "unknown key without a close match",
        BASE + "zzz: 1\n",
        [f'8:1: zzz: unknown key "zzz"; allowed keys: {POLICY_KEYS}'],
    ),
    (
        "min above max",
        BASE.replace("{min: 1, max: 4}", "{min: 5, max: 4}"),
        ["3:17: replicas.min: min (5) must be <= max (4)"],
    ),
    (
        "min 0 needs scale_to_zero and create",
        BASE.replace("{min: 1, max: 4}", "{min: 0, max: 4}"),
        [
            "3:17: replicas.min: min: 0 needs a scale_to_zero section (when to delete and what "
            "wakes the deployment)",
            "3:17: replicas.min: min: 0 needs deployment.create (the spec to deploy it again "
            "after scaling to zero)",
        ],
    ),
    (
        "duplicate key",
        BASE + "interval: 15s\ninterval: 30s\n",
        ['9:1: interval: duplicate key "interval" (first set on line 8)'],
    ),
    (
        "boolean where a number goes",
        BASE.replace("value: 5}", "value: true}"),
        ["7:42: metrics[0].target.value: must be a number, got true"],
    ),
    (
        "NaN",
        BASE.replace("value: 5}", "value: .nan}"),
        ["7:42: metrics[0].target.value: must be a finite number, got nan"],
    ),
    (
        "infinity",
        BASE.replace("value: 5}", "value: .inf}"),
        ["7:42: metrics[0].target.value: must be a finite number, got inf"],
    ),
    (
        "target not positive",
        BASE.replace("value: 5}", "value: -5}"),
        ["7:42: metrics[0].target.value: must be > 0, got -5"],
    ),
    (
        "utilization is a ratio",
        BASE.replace("type: average_value, value: 5", "type: utilization, value: 80"),
        [
            "7:40: metrics[0].target.value: a utilization target is a ratio in (0, 1] "
            "(0.8 = 80%), got 80"
        ],
    ),
    (
        "tolerance out of range",
        BASE + "behavior:\n  tolerance: 1.0\n",
        ["9:14: behavior.tolerance: must be >= 0 and < 1, got 1.0"],
    ),
    (
        "tolerance up/down out of range",
        BASE + "behavior:\n  tolerance: {up: 0.05, down: -1}\n",
        ["9:31: behavior.tolerance.down: must be >= 0 and < 1, got -1"],
    ),
    (
        "tolerance as a list",
        BASE + "behavior:\n  tolerance: [0.1]\n",
        ["9:14: behavior.tolerance: must be a number in [0, 1) or {up, down}, got a list"],
    ),
    (
        "rate policy fields",
        BASE
        + "behavior:\n  scale_up:\n    policies:\n      - {type: pods, value: 0, period: 0s}\n",
        [
            "11:16: behavior.scale_up.policies[0].type: must be one of [replicas, percent], "
            'got "pods"',
            "11:29: behavior.scale_up.policies[0].value: must be > 0 and <= 1000000, got 0",
            '11:40: behavior.scale_up.policies[0].period: must be a duration > 0, got "0s"',
        ],
    ),
    (
        "select",
        BASE + "behavior:\n  scale_down: {select: maybe}\n",
        ['9:24: behavior.scale_down.select: must be one of [max, min, disabled], got "maybe"'],
    ),
    (
        "interval zero",
        BASE + "interval: 0s\n",
        ['8:11: interval: must be a duration of at least 50ms, got "0s"'],
    ),
    (
        # A period of 100 ns would evaluate (and read every source) in a tight loop.
        "interval below the floor",
        BASE + "interval: 0.0001ms\n",
        ['8:11: interval: must be a duration of at least 50ms, got "0.0001ms"'],
    ),
    (
        # The value is escaped: a line break in it must not split the error line in two.
        "duration with a line break",
        BASE + 'interval: "1\\nm"\n',
        [
            '8:11: interval: must be a duration like "15s", "5m", "1h30m", "500ms" or a number '
            'of seconds, got "1\\nm"'
        ],
    ),
    (
        "metric names listed are escaped",
        BASE.replace("- name: waiting", '- name: "wait\\ning"')
        + "scale_to_zero: {after: 15m, activation: [{metric: waiting, threshold: 0}]}\n",
        [
            "8:51: scale_to_zero.activation[0].metric: must name a metric of this policy, one "
            'of ["wait\\ning"], got "waiting"'
        ],
    ),
    (
        "a long cron expression is cut in the message",
        BASE + "schedules:\n  - {cron: " + "x" * 300 + ", duration: 1h, min: 2}\n",
        [
            "9:12: schedules[0].cron: must be a five-field crontab expression (minute hour day "
            f'month day_of_week), got "{"x" * 57}...": cron \'{"x" * 191}...'
        ],
    ),
    (
        "duration text",
        BASE + "interval: 5 minutes\n",
        [
            '8:11: interval: must be a duration like "15s", "5m", "1h30m", "500ms" or a number '
            'of seconds, got "5 minutes"'
        ],
    ),
    (
        "cron field count",
        BASE + 'schedules:\n  - {cron: "0 8 * *", duration: 10h, min: 2}\n',
        [
            "9:12: schedules[0].cron: must be a five-field crontab expression (minute hour day "
            "month day_of_week), got \"0 8 * *\": cron '0 8 * *': expected 5 fields, got 4"
        ],
    ),
    (
        "cron weekday out of range",
        BASE + 'schedules:\n  - {cron: "0 8 * * 8", duration: 10h, min: 2}\n',
        [
            "9:12: schedules[0].cron: must be a five-field crontab expression (minute hour day "
            "month day_of_week), got \"0 8 * * 8\": day of week '8': expected days 0-7 (0 and "
            "7 = Sunday) or sun-sat, a range from low to high"
        ],
    ),
    (
        "cron that never fires",
        BASE + 'schedules:\n  - {cron: "0 0 31 2 *", duration: 1h, min: 2}\n',
        ['9:12: schedules[0].cron: cron expression "0 0 31 2 *" never fires (no such date)'],
    ),
    (
        "cron value",
        BASE + 'schedules:\n  - {cron: "0 25 * * *", duration: 10h, min: 2}\n',
        [
            "9:12: schedules[0].cron: must be a five-field crontab expression (minute hour day "
            "month day_of_week), got \"0 25 * * *\": Error validating expression '25': the last "
            "value (25) is higher than the maximum value (23)"
        ],
    ),
    (
        "time zone",
        BASE
        + 'schedules:\n  - {cron: "0 8 * * *", duration: 10h, timezone: Mars/Olympus, min: 2}\n',
        [
            '9:50: schedules[0].timezone: must be an IANA time zone like "UTC" or '
            '"Asia/Kolkata", got "Mars/Olympus"'
        ],
    ),
    (
        "schedule bound outside replicas",
        BASE + 'schedules:\n  - {cron: "0 8 * * *", duration: 10h, min: 9}\n',
        ["9:45: schedules[0].min: must be within [1, 4] (replicas.min..replicas.max), got 9"],
    ),
    (
        "schedule min above max",
        BASE + 'schedules:\n  - {cron: "0 8 * * *", duration: 10h, min: 4, max: 2}\n',
        ["9:45: schedules[0].min: min (4) must be <= max (2)"],
    ),
    (
        "schedule without bounds",
        BASE + 'schedules:\n  - {cron: "0 8 * * *", duration: 10h}\n',
        ['9:5: schedules[0]: a schedule must set "min" or "max"'],
    ),
    (
        "on_metric_failure.after",
        BASE + "on_metric_failure: {after: 0}\n",
        ["8:28: on_metric_failure.after: must be >= 1 and <= 1000000, got 0"],
    ),
    (
        "fallback outside replicas",
        BASE + "on_metric_failure: {action: {replicas: 9}}\n",
        [
            "8:40: on_metric_failure.action.replicas: fallback must be within [1, 4] "
            "(replicas.min..replicas.max), got 9"
        ],
    ),
    (
        "failure action",
        BASE + "on_metric_failure: {action: panic}\n",
        ['8:29: on_metric_failure.action: must be "hold" or {replicas: N}, got "panic"'],
    ),
    (
        "cost not positive",
        BASE + "cost: {replica_hourly_usd: 0}\n",
        ["8:28: cost.replica_hourly_usd: must be >= 0.0001 and <= 1000000, got 0"],
    ),
    (
        "cost cap below min",
        BASE.replace("{min: 1, max: 4}", "{min: 3, max: 4}")
        + "cost: {replica_hourly_usd: 2.5, max_hourly_usd: 5}\n",
        [
            "8:49: cost.max_hourly_usd: 5 USD/h pays for 2 replicas at 2.5 USD/h, fewer than 3 "
            "(replicas.min, at least 1)"
        ],
    ),
    (
        "scale_to_zero.after",
        BASE + "scale_to_zero: {after: 0s, activation: [{metric: waiting}]}\n",
        ['8:24: scale_to_zero.after: must be a duration > 0, got "0s"'],
    ),
    (
        "activation names a metric",
        BASE.replace("{min: 1, max: 4}", "{min: 0, max: 4}").replace(
            "name: chat}", "name: chat, create: {image: x}}"
        )
        + "scale_to_zero: {activation: [{metric: queue}]}\n",
        [
            "8:39: scale_to_zero.activation[0].metric: must name a metric of this policy, one "
            'of [waiting], got "queue"'
        ],
    ),
    (
        "panic threshold",
        BASE + "behavior:\n  panic: {threshold: 1}\n",
        ["9:22: behavior.panic.threshold: must be > 1, got 1"],
    ),
    (
        "unknown source type",
        BASE.replace("type: prometheus", "type: kafka"),
        [
            "6:20: metrics[0].source.type: must be one of [prometheus, promql, redis, rabbitmq, "
            'nats, http_json, gateway], got "kafka"'
        ],
    ),
    (
        "source without type",
        BASE.replace("type: prometheus, ", ""),
        [
            '6:13: metrics[0].source: missing required key "type" (one of [prometheus, promql, '
            "redis, rabbitmq, nats, http_json, gateway])"
        ],
    ),
    (
        "redis pending needs group",
        with_source('{type: redis, url: "redis://q:6379/0", key: jobs, mode: pending}'),
        ['6:69: metrics[0].source.mode: mode "pending" needs "group" (the consumer group name)'],
    ),
    (
        "rabbitmq unacked needs management_url",
        with_source('{type: rabbitmq, url: "amqp://q:5672/", queue: jobs, include_unacked: true}'),
        [
            '6:83: metrics[0].source.include_unacked: include_unacked needs "management_url" '
            "(the management API)"
        ],
    ),
    (
        "promql bearer and basic auth",
        with_source(
            '{type: promql, url: "http://prom:9090", query: up, bearer_token: {env: T}, '
            "basic_auth: {username: u, password: {env: P}}}"
        ),
        [
            '6:100: metrics[0].source.basic_auth: set either "bearer_token" or "basic_auth", '
            "not both"
        ],
    ),
    (
        "literal secret",
        with_source('{type: promql, url: "http://prom:9090", query: up, bearer_token: abc123}'),
        [
            "6:78: metrics[0].source.bearer_token: must be {env: NAME} or {file: PATH}, got a "
            "literal value; never write the secret itself in the file, put it in an environment "
            "variable or a file"
        ],
    ),
    (
        "source key of another type",
        with_source('{type: redis, url: "redis://q:6379/0", key: jobs, queue: x}'),
        [
            '6:63: metrics[0].source.queue: unknown key "queue"; allowed keys: [type, url, key, '
            "mode, group, password, timeout]"
        ],
    ),
    (
        "url scheme",
        BASE.replace('"http://gw:8000/metrics"', '"gw:8000/metrics"'),
        [
            "6:37: metrics[0].source.url: must be a URL starting with one of [http://, https://],"
            ' got "gw:8000/metrics"'
        ],
    ),
    (
        "url and urls",
        BASE.replace(
            'url: "http://gw:8000/metrics"', 'url: "http://a:1/m", urls: ["http://b:1/m"]'
        ),
        ['6:59: metrics[0].source.urls: set either "url" or "urls", not both'],
    ),
    (
        "duplicate metric name",
        BASE
        + "  - name: waiting\n"
        + '    source: {type: nats, url: "nats://n:4222", stream: s, consumer: c}\n'
        + "    target: {type: value, value: 5}\n",
        ['8:11: metrics[1].name: duplicate metric name "waiting" (also metrics[0])'],
    ),
    (
        "policy name is a label",
        BASE.replace("name: chat\n", "name: Chat_Bot\n", 1),
        [
            "1:7: name: must be a lowercase name of letters, digits and '-' that starts and "
            'ends with a letter or digit, got "Chat_Bot"'
        ],
    ),
    (
        "policy name too long",
        BASE.replace("name: chat\n", "name: " + "a" * 64 + "\n", 1),
        [f'1:7: name: must be at most 63 characters, got 64: "{"a" * 57}..."'],
    ),
    ("document not a mapping", "- a\n- b\n", ["1:1: (root): must be a mapping, got a list"]),
    (
        "YAML syntax error",
        BASE + "oops: [1, 2\n",
        ["9:1: (root): invalid YAML: expected ',' or ']', but got '<stream end>'"],
    ),
    (
        "wrong container type",
        BASE.replace("metrics:\n", "metrics: 5\nx:\n"),
        [
            "4:10: metrics: must be a list, got 5",
            f'5:1: x: unknown key "x"; allowed keys: {POLICY_KEYS}',
        ],
    ),
    (
        "no metrics",
        BASE.split("metrics:")[0] + "metrics: []\n",
        ["4:10: metrics: must list at least 1 item, got an empty list"],
    ),
    (
        "create not a mapping",
        BASE.replace("name: chat}", "name: chat, create: 5}"),
        ["2:60: deployment.create: must be a mapping, got 5"],
    ),
    (
        "float where an integer goes",
        BASE.replace("max: 4", "max: 4.5"),
        ["3:25: replicas.max: must be an integer, got 4.5"],
    ),
    (
        "number where a string goes",
        BASE.replace("name: chat}", "name: 42}"),
        ["2:46: deployment.name: must be a string, got 42 (quote it to make it a string)"],
    ),
    (
        "custom tag",
        BASE + "interval: !duration 15s\n",
        ['8:11: interval: unsupported tag "!duration"'],
    ),
    (
        "tag on a mapping",
        BASE.replace("replicas: {min: 1, max: 4}", "replicas: !!set {min: 1, max: 4}"),
        ['3:11: replicas: unsupported tag "tag:yaml.org,2002:set"'],
    ),
    (
        "huge integer",
        BASE.replace("max: 4", "max: " + "9" * 50),
        [f"3:25: replicas.max: must be >= 1 and <= 10000, got {'9' * 50}"],
    ),
    (
        "backoff above max_backoff",
        BASE + "on_deployment_failure: {backoff: 1h, max_backoff: 10m}\n",
        ["8:34: on_deployment_failure.backoff: backoff (3600s) must be <= max_backoff (600s)"],
    ),
    (
        "quantile range",
        BASE.replace('metric: "vllm', 'quantile: 1.5, metric: "vllm'),
        ["6:73: metrics[0].source.quantile: must be > 0 and < 1, got 1.5"],
    ),
    (
        "label regex",
        BASE.replace('metric: "vllm', 'labels_regex: {model: "(unclosed"}, metric: "vllm'),
        [
            "6:85: metrics[0].source.labels_regex.model: must be a valid regular expression, "
            'got "(unclosed": missing ), unterminated subpattern at position 0'
        ],
    ),
    (
        "timestamp where a string goes",
        BASE.replace("name: chat}", "name: 2024-01-01}"),
        [
            "2:46: deployment.name: must be a string, got a timestamp 2024-01-01 (quote it to "
            "make it a string)"
        ],
    ),
    (
        "non-string key",
        BASE + "[a, b]: 1\n",
        ["8:1: (root): keys must be plain strings, got a list"],
    ),
    (
        "exponent without a dot, beyond float range",
        BASE.replace("value: 5}", "value: 1e400}"),
        [
            "7:42: metrics[0].target.value: must be a finite number, got 1e400 (beyond the "
            "float range)"
        ],
    ),
    (
        "prices whose ratio overflows",
        BASE + "cost: {replica_hourly_usd: 1.0e-300, max_hourly_usd: 1.0e+300}\n",
        [
            "8:28: cost.replica_hourly_usd: must be >= 0.0001 and <= 1000000, got 1e-300",
            "8:54: cost.max_hourly_usd: must be > 0 and <= 1000000000, got 1e+300",
        ],
    ),
    (
        "leading zero is octal",
        BASE.replace("max: 4", "max: 010"),
        [
            "3:25: replicas.max: must be written without a leading 0, got 010 (YAML reads it "
            "as octal 8)"
        ],
    ),
    (
        "base 60",
        BASE + "interval: 1:30\n",
        [
            "8:11: interval: must be a plain number, got 1:30 (YAML reads it as base 60: 90); "
            'write the number, or a duration like "1m30s"'
        ],
    ),
    (
        "duration past a year",
        BASE + "interval: 99999999999d\n",
        ['8:11: interval: must be a duration of at most 365d, got "99999999999d"'],
    ),
    (
        "blank string",
        BASE.replace("name: chat}", 'name: "  "}'),
        ['2:46: deployment.name: must not be blank, got "  "'],
    ),
    (
        "url port out of range",
        BASE.replace("http://gw:8000/metrics", "http://gw:99999/metrics"),
        [
            '6:37: metrics[0].source.url: must be a URL, got "http://gw:99999/metrics": Port out '
            "of range 0-65535"
        ],
    ),
    (
        "url with a space",
        BASE.replace("http://gw:8000/metrics", "http://gw :8000/metrics"),
        [
            "6:37: metrics[0].source.url: must be a URL with a host name and no spaces, got "
            '"http://gw :8000/metrics"'
        ],
    ),
    (
        "gateway model twice",
        BASE + "gateway: {model: [chat, chat]}\n",
        ['8:25: gateway.model[1]: lists model "chat" twice'],
    ),
    (
        "http_json path with an empty part",
        with_source('{type: http_json, url: "http://q:8080/x", path: "data..depth"}'),
        [
            '6:61: metrics[0].source.path: must be a dotted path like "data.queue.depth" (no '
            'empty part), got "data..depth"'
        ],
    ),
    (
        "tab indentation",
        BASE + "behavior:\n\ttolerance: 0.1\n",
        [
            "9:1: (root): invalid YAML: found character '\\t' that cannot start any token "
            "(indent with spaces, not tabs)"
        ],
    ),
    (
        "indentation",
        BASE + "behavior:\n  scale_up:\n    cooldown: 1m\n   select: max\n",
        [
            "11:4: (root): invalid YAML: expected <block end>, but found '<block mapping start>' "
            "(check this line's indentation against the lines above)"
        ],
    ),
    (
        "cron macro",
        BASE + 'schedules:\n  - {cron: "@daily", duration: 1h, min: 2}\n',
        [
            "9:12: schedules[0].cron: must be a five-field crontab expression (minute hour day "
            "month day_of_week), got \"@daily\": cron '@daily': expected 5 fields, got 1 "
            "(macros like @daily are not supported)"
        ],
    ),
    (
        "empty file",
        "# nothing here\n",
        ["1:1: (root): no policy in this file"],
    ),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_error_lines(text: str, expected: list[str]) -> None:
    with pytest.raises(ValidationFailed) as caught:
        load_policy_text(text, "p.yaml")
    assert [str(e) for e in caught.value.errors] == [f"p.yaml:{line}" for line in expected]


def test_the_base_policy_is_valid() -> None:
    (policy,) = load_policy_text(BASE, "p.yaml")
    assert policy.name == "chat"


def test_every_error_of_a_file_is_reported_at_once() -> None:
    text = (
        BASE.replace("value: 5}", "value: -1}").replace("{min: 1, max: 4}", "{min: 1, max: 0}")
        + "interval: soon\nbehavior: {tolerence: 0.1}\n"
    )
    with pytest.raises(ValidationFailed) as caught:
        load_policy_text(text, "p.yaml")
    paths = [e.path for e in caught.value.errors]
    assert paths == [
        "replicas.max",
        "metrics[0].target.value",
        "interval",
        "behavior.tolerence",
    ]
    # Sorted by position, and the exception's text is every line.
    assert [(e.line, e.col) for e in caught.value.errors] == sorted(
        (e.line, e.col) for e in caught.value.errors
    )
    assert str(caught.value).splitlines() == [str(e) for e in caught.value.errors]


def test_an_exponent_without_a_dot_is_the_number_yaml_1_2_and_json_read() -> None:
    # YAML 1.1 reads `1e3` as text; an editor, JSON and a person read 1000.
    (policy,) = load_policy_text(BASE.replace("value: 5}", "value: 1e3}"), "p.yaml")
    assert policy.metrics[0].target is not None and policy.metrics[0].target.value == 1000.0
    # Quoted, it stays text, as written.
    with pytest.raises(ValidationFailed):
        load_policy_text(BASE.replace("value: 5}", 'value: "1e3"}'), "p.yaml")


def test_policy_error_str_format() -> None:
    from autoscaler.policy.errors import PolicyError

    error = PolicyError("a.yaml", 3, 7, "metrics[1].target.value", "must be > 0, got -1")
    assert str(error) == "a.yaml:3:7: metrics[1].target.value: must be > 0, got -1"


def test_alias_bomb_is_an_error_not_a_hang() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        prev = f"*a{i - 1}"
        lines.append(f"a{i}: &a{i} [{', '.join([prev] * 10)}]")
    text = "\n".join(lines) + "\n" + BASE.replace("name: chat}", "name: chat, create: {b: *a8}}")
    with pytest.raises(ValidationFailed) as caught:
        load_policy_text(text, "p.yaml")
    messages = [e.message for e in caught.value.errors]
    assert any("too large" in m for m in messages), messages


def test_self_referencing_alias_is_an_error() -> None:
    text = BASE.replace("name: chat}", "name: chat, create: &c {self: *c}}")
    with pytest.raises(ValidationFailed) as caught:
        load_policy_text(text, "p.yaml")
    assert any("deeper than" in e.message for e in caught.value.errors)


def test_anchors_and_merge_keys_work() -> None:
    # Unknown top-level keys are errors, so anchors live inside valid values.
    text = BASE.replace(
        "target: {type: average_value, value: 5}",
        "target: &t {type: average_value, value: 5}",
    ) + (
        "  - name: other\n"
        '    source: {type: nats, url: "nats://n:4222", stream: s, consumer: c}\n'
        "    target: *t\n"
        "behavior:\n"
        "  scale_up: &rules {stabilization_window: 1m, cooldown: 30s}\n"
        "  scale_down:\n"
        "    <<: *rules\n"
        "    cooldown: 5m\n"
    )
    (policy,) = load_policy_text(text, "p.yaml")
    assert policy.metrics[1].target == policy.metrics[0].target
    assert policy.behavior.scale_down.stabilization_window == 60.0
    assert policy.behavior.scale_down.cooldown == 300.0
    assert policy.behavior.scale_up.cooldown == 30.0
