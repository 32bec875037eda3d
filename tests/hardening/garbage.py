"""The garbage-metric catalogue: every kind of bad answer a metric endpoint can give.

One real HTTP server (`tests/sources/httpserver.py`) serves each kind on three routes, one per
HTTP source type: `/metrics` (a `prometheus` gauge `queue_depth`), `/stats` (`http_json`, path
`queue`) and `/api/v1/query` (`promql`). Wherever a misread could yield a number, that number
looks idle (0 or below): a reader that let the garbage through would scale down and delete,
which is what the daemon tests watch for. Good answers (`good`) read `GOOD_VALUE`.
"""

from __future__ import annotations

import functools
import json
import random

from tests.sources.httpserver import LocalHttpServer, Reply

TEXT = "text/plain; version=0.0.4; charset=utf-8"
JSON = "application/json"
GOOD_VALUE = 15.0
HUGE = 20 * 1024 * 1024  # past both caps (8 MiB, 1 MiB); the benchmark sends the 50 MB
SLOW_TIMEOUT = 1.0  # the sources' timeout in these tests; `trickle` takes far longer


def _prom(value: str) -> str:
    return f'# TYPE queue_depth gauge\nqueue_depth{{queue="chat"}} {value}\n'


def _query(value: str) -> str:
    return json.dumps(
        {
            "status": "success",
            "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1.0, value]}]},
        }
    )


def _junk(seed: int, size: int = 4096) -> bytes:
    return random.Random(seed).randbytes(size)


def _deep(depth: int) -> str:
    return "[" * depth + "0" + "]" * depth


# kind -> (prometheus reply, http_json reply, promql reply)
Garbage = tuple[Reply, Reply, Reply]


def _padding_prom() -> bytes:
    line = b"# HELP padding " + b"x" * 1000 + b"\n"
    body = line * (HUGE // len(line) + 1)
    return body + _prom("0").encode()


def _padding_json() -> bytes:
    return b'{"pad": "' + b"x" * HUGE + b'", "queue": 0}'


def _padding_query() -> bytes:
    answer = json.loads(_query("0"))
    answer["pad"] = "x" * HUGE
    return json.dumps(answer).encode()


@functools.cache
def garbage_kinds() -> dict[str, Garbage]:
    """Every garbage kind (built once per test process: the huge bodies are 20 MB each)."""
    deep = _deep(100_000)
    huge = (_padding_prom(), _padding_json(), _padding_query())
    return {
        "negative": (
            Reply(_prom("-50"), content_type=TEXT),
            Reply('{"queue": -50}', content_type=JSON),
            Reply(_query("-50"), content_type=JSON),
        ),
        "negative_one_series": (
            Reply(
                _prom("50") + 'queue_depth{queue="batch"} -50\n',
                content_type=TEXT,
            ),
            Reply('{"queue": "-50"}', content_type=JSON),
            Reply(_query("-0.5"), content_type=JSON),
        ),
        "nan": (
            Reply(_prom("NaN"), content_type=TEXT),
            Reply('{"queue": NaN}', content_type=JSON),
            Reply(_query("NaN"), content_type=JSON),
        ),
        "inf": (
            Reply(_prom("-Inf"), content_type=TEXT),
            Reply('{"queue": -1e400}', content_type=JSON),
            Reply(_query("-Inf"), content_type=JSON),
        ),
        "duplicate": (
            Reply(_prom("50") + 'queue_depth{queue="chat"} 0\n', content_type=TEXT),
            Reply('{"queue": 50, "queue": 0}', content_type=JSON),
            Reply(
                '{"status": "success", "data": {"resultType": "vector", "result": '
                '[{"metric": {}, "value": [1.0, "50"], "value": [1.0, "0"]}]}}',
                content_type=JSON,
            ),
        ),
        "huge": (
            Reply(huge[0], content_type=TEXT),
            Reply(huge[1], content_type=JSON),
            Reply(huge[2], content_type=JSON),
        ),
        "huge_no_length": (
            Reply(huge[0], content_type=TEXT, mode="nolength"),
            Reply(huge[1], content_type=JSON, mode="nolength"),
            Reply(huge[2], content_type=JSON, mode="nolength"),
        ),
        "trickle": (
            Reply(_prom("0"), content_type=TEXT, mode="trickle"),
            Reply('{"queue": 0}', content_type=JSON, mode="trickle"),
            Reply(_query("0"), content_type=JSON, mode="trickle"),
        ),
        "deep": (
            Reply("queue_depth" + "{" * 100_000 + " 0\n", content_type=TEXT),
            Reply('{"queue": 0, "x": ' + deep + "}", content_type=JSON),
            Reply(_query("0")[:-1] + ', "x": ' + deep + "}", content_type=JSON),
        ),
        "bignum": (
            Reply(_prom("1e400"), content_type=TEXT),
            Reply('{"queue": 0, "id": ' + "9" * 5000 + "}", content_type=JSON),
            Reply(_query("1e400"), content_type=JSON),
        ),
        "wrong_content_type": (
            Reply(_prom("0"), content_type="application/openmetrics-text; version=1.0.0"),
            Reply("<html><body>queue: 0</body></html>", content_type="text/html"),
            Reply("<html><body>0</body></html>", content_type="text/html"),
        ),
        "truncated": (
            Reply(_prom("0")[:-4] + '{queue="', content_type=TEXT),
            Reply('{"queue": 0, "more": [1, 2', content_type=JSON),
            Reply(_query("0")[:-12], content_type=JSON),
        ),
        "dropped": (
            Reply(_prom("0"), content_type=TEXT, mode="drop"),
            Reply('{"queue": 0}', content_type=JSON, mode="drop"),
            Reply(_query("0"), content_type=JSON, mode="drop"),
        ),
        "binary": (
            Reply(_junk(1), content_type=TEXT),
            Reply(_junk(2), content_type=JSON),
            Reply(_junk(3), content_type=JSON),
        ),
    }


def good() -> Garbage:
    value = f"{GOOD_VALUE:g}"
    return (
        Reply(_prom(value), content_type=TEXT),
        Reply(json.dumps({"queue": GOOD_VALUE}), content_type=JSON),
        Reply(_query(value), content_type=JSON),
    )


def serve(server: LocalHttpServer, answers: Garbage) -> None:
    prom, stats, query = answers
    server.routes.update({"/metrics": prom, "/stats": stats, "/api/v1/query": query})


SOURCE_TYPES = ("prometheus", "http_json", "promql")


def source_yaml(source_type: str, base: str, timeout: float = SLOW_TIMEOUT) -> str:
    """The flow-style YAML of a source reading `base` (http://127.0.0.1:PORT)."""
    if source_type == "prometheus":
        return (
            f'{{type: prometheus, url: "{base}/metrics", metric: queue_depth, timeout: {timeout}s}}'
        )
    if source_type == "http_json":
        return f'{{type: http_json, url: "{base}/stats", path: queue, timeout: {timeout}s}}'
    return f'{{type: promql, url: "{base}", query: "queue_depth", timeout: {timeout}s}}'
