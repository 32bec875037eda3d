"""The `promql` source: one instant query against a Prometheus server's HTTP API.

`GET {url}/api/v1/query?query=...`. The answer must be one number: a scalar, or an instant
vector with exactly one series. A vector with several series is a permanent error that says
to aggregate in PromQL (`sum(...)`, `max(...)`): summing here would hide a query that selects
more than its author meant. An empty vector or NaN follows `on_empty`. Prometheus' own
`errorType` and `error` are passed on; `timeout`, `canceled`, `unavailable` and `internal` are
temporary, the rest (`bad_data`, `execution`, ...) permanent.

A negative result is a failed read (`BadValueError`): what is read here is load; a query of
a signed quantity must be made non-negative in PromQL. The answer is read up to `max_body`
bytes (1 MiB by default) and decoded strictly (`jsondoc`: duplicate keys, deep nesting and
huge integers fail the read); `timeout` bounds the whole read, parsing included.

Credentials (bearer token or basic auth) are resolved on every read, so a rotated credential
file is picked up without a restart. Response parsing is `parse_query_response` (pure).
"""

from __future__ import annotations

from typing import Any

import httpx

from autoscaler.policy.model import PromQLSource
from autoscaler.sources import jsondoc, numbers
from autoscaler.sources.base import PermanentSourceError, SourceError, TemporarySourceError
from autoscaler.sources.common import (
    bounded_read,
    clip,
    finish,
    off_loop,
    redact_url,
    resolve_secret,
)
from autoscaler.sources.httpget import (
    http_get,
)

TEMPORARY_ERROR_TYPES = frozenset({"timeout", "canceled", "unavailable", "internal"})


class QueryResponseError(ValueError):
    """The answer is not a usable Prometheus query response."""

    def __init__(self, message: str, temporary: bool = False):
        super().__init__(message)
        self.temporary = temporary


def _sample_value(value: Any, where: str) -> float:
    """A `[timestamp, "value"]` pair's number (Prometheus sends values as strings, spelt as
    `numbers.prometheus_number` reads them: `"1_000"` or `" 7"` is no answer of Prometheus)."""
    if not isinstance(value, list) or len(value) != 2:
        raise QueryResponseError(f"{where} is not a [timestamp, value] pair")
    raw = value[1]
    if not isinstance(raw, str):
        raise QueryResponseError(f"{where} value {clip(repr(raw), 60)} is not a string")
    try:
        return numbers.prometheus_number(raw)
    except numbers.NumberSyntaxError as exc:
        raise QueryResponseError(f"{where} value {exc}") from None


def parse_query_response(body: Any) -> float | None:
    """The single number in a decoded `/api/v1/query` answer; None when the result is empty.

    Raises QueryResponseError for error answers (with Prometheus' message) and for shapes
    that are not one number."""
    if not isinstance(body, dict):
        raise QueryResponseError("answer is not a JSON object")
    status = body.get("status")
    if status == "error":
        error_type = body.get("errorType")
        message = body.get("error")
        text = f"Prometheus error ({clip(str(error_type), 40)}): {clip(str(message))}"
        temporary = isinstance(error_type, str) and error_type in TEMPORARY_ERROR_TYPES
        return _raise(text, temporary=temporary)
    if status != "success":
        raise QueryResponseError(f"answer has status {clip(repr(status), 40)}, not success")
    data = body.get("data")
    if not isinstance(data, dict):
        raise QueryResponseError("answer has no data object")
    result_type, result = data.get("resultType"), data.get("result")
    if result_type == "scalar":
        return _sample_value(result, "scalar result")
    if result_type == "vector":
        if not isinstance(result, list):
            raise QueryResponseError("vector result is not a list")
        if not result:
            return None
        if len(result) > 1:
            raise QueryResponseError(
                f"query returned {len(result)} series; one number is needed: aggregate in "
                "PromQL, e.g. sum(...) or max(...)"
            )
        series = result[0]
        if not isinstance(series, dict) or "value" not in series:
            raise QueryResponseError("vector sample has no value")
        return _sample_value(series["value"], "vector sample")
    if result_type == "matrix":
        raise QueryResponseError(
            "query returned a range vector (matrix); use an instant expression, e.g. wrap a "
            "range selector in rate(...) or avg_over_time(...)"
        )
    raise QueryResponseError(
        f"result type {clip(repr(result_type), 40)} is not a number (need scalar or vector)"
    )


def _raise(message: str, temporary: bool) -> float:
    raise QueryResponseError(message, temporary=temporary)


class PromQLQuerySource:
    def __init__(
        self,
        spec: PromQLSource,
        *,
        name: str,
        transport: httpx.AsyncBaseTransport | None = None,
    ):
        self.spec = spec
        self.name = name
        self.endpoint = spec.url.rstrip("/") + "/api/v1/query"
        self.describe = f"promql {redact_url(spec.url)} {clip(spec.query, 120)}"
        self._client = httpx.AsyncClient(
            transport=transport, timeout=httpx.Timeout(spec.timeout), follow_redirects=True
        )

    async def read(self) -> float:
        return await bounded_read(self.name, self.spec.timeout, self._read)

    async def aclose(self) -> None:
        await self._client.aclose()

    def _auth(self) -> tuple[dict[str, str], tuple[str, str] | None]:
        headers: dict[str, str] = {}
        token = resolve_secret(self.name, self.spec.bearer_token, "bearer_token")
        if token is not None:
            headers["Authorization"] = f"Bearer {token.reveal()}"
        basic = None
        if self.spec.basic_auth is not None:
            password = resolve_secret(
                self.name, self.spec.basic_auth.password, "basic_auth.password"
            )
            assert password is not None
            basic = (self.spec.basic_auth.username, password.reveal())
        return headers, basic

    async def _read(self) -> float:
        headers, basic = self._auth()
        where = redact_url(self.spec.url)
        # The API explains 400/422/503 answers in JSON; read those instead of the status.
        response = await http_get(
            self._client,
            self.name,
            self.endpoint,
            headers=headers,
            auth=basic,
            params={"query": self.spec.query},
            accept_status=lambda status: status in (400, 422, 503),
            max_body=self.spec.max_body,
        )
        content, status = response.content, response.status_code
        del response  # keep no reference to a large body past the parse
        try:
            body = await off_loop(self.name, len(content), lambda: jsondoc.loads(content))
        except jsondoc.JsonDocError as exc:
            error: SourceError
            if status >= 500:
                error = TemporarySourceError(self.name, f"{where} answered HTTP {status}")
            else:
                error = PermanentSourceError(
                    self.name,
                    f"{where} did not answer with Prometheus API JSON ({clip(str(exc), 160)}; "
                    "is url the server's base URL, e.g. http://prometheus:9090?)",
                )
            raise error from None
        try:
            value = parse_query_response(body)
        except QueryResponseError as exc:
            error_type = TemporarySourceError if exc.temporary else PermanentSourceError
            raise error_type(self.name, str(exc)) from None
        return finish(
            self.name, value, self.spec.on_empty, "query returned no series", "query result"
        )
