"""The `http_json` source over real HTTP, and the dotted-path reader under Hypothesis."""

from __future__ import annotations

import json
import math

import anyio
import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from autoscaler.policy.model import HttpJsonSource, SecretRef
from autoscaler.sources.base import PermanentSourceError, SourceError, TemporarySourceError
from autoscaler.sources.http_json import HttpJsonSourceReader, JsonPathError, value_at_path
from autoscaler.sources.registry import build_source
from tests.services import free_port
from tests.sources.httpserver import LocalHttpServer, Reply, serving
from tests.sources.spellings import NOT_WRITTEN, PADDED, refused

pytestmark = pytest.mark.anyio
DOC = {
    "data": {"queue": {"depth": 12, "name": "chat"}, "items": [{"n": 1.5}, {"n": "7"}]},
    "ok": True,
    "nothing": None,
}


@pytest.mark.parametrize(
    ("path", "expected"),
    [("data.queue.depth", 12.0), ("data.items.0.n", 1.5), ("data.items.1.n", 7.0)],
)
def test_paths(path: str, expected: float) -> None:
    assert value_at_path(DOC, path) == expected


@pytest.mark.parametrize(
    ("path", "match"),
    [
        ("data.queue.size", r"no key 'size' at data\.queue \(keys: depth, name\)"),
        ("data.items.2.n", "index 2 is out of range at data.items"),
        ("data.items.first", "is a list; 'first' is not an index"),
        ("data.queue.name", "value 'chat' is not a number"),
        ("ok", "value is a boolean, not a number"),
        ("nothing", "value is null"),
        ("data.queue", "value is an object"),
        ("data.queue.depth.x", "is a number, cannot take 'x'"),
        ("data..depth", "empty part"),
    ],
)
def test_bad_paths_name_the_path(path: str, match: str) -> None:
    with pytest.raises(JsonPathError, match=match) as info:
        value_at_path(DOC, path)
    assert str(info.value).startswith(f"path {path}") or "empty part" in match


async def test_read_over_http_with_headers_and_token(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("AUTOSCALER_TEST_JSON_TOKEN", "tok-9")
    with serving(stats=Reply(json.dumps(DOC), content_type="application/json")) as srv:
        src = build_source(
            HttpJsonSource(
                url=srv.url("/stats"),
                path="data.queue.depth",
                headers={"X-Tenant": "t1"},
                bearer_token=SecretRef(env="AUTOSCALER_TEST_JSON_TOKEN"),
            ),
            name="depth",
        )
        assert await src.read() == 12.0
        assert srv.requests[-1].headers["x-tenant"] == "t1"
        assert srv.requests[-1].headers["authorization"] == "Bearer tok-9"
        src2 = build_source(
            HttpJsonSource(url=srv.url("/stats"), path="data.queue.name"), name="depth"
        )
        with pytest.raises(PermanentSourceError, match=r"depth: .*path data\.queue\.name"):
            await src2.read()
        srv.routes["/stats"] = Reply("<html>", content_type="text/html")
        with pytest.raises(PermanentSourceError, match="did not answer with JSON"):
            await src.read()
        await src.aclose()
        await src2.aclose()


@pytest.mark.parametrize("text", NOT_WRITTEN + PADDED)
async def test_a_quoted_number_no_json_api_writes_is_a_failed_read(text: str) -> None:
    # float() read each of these as a number ("1_000" as 1000, an Arabic-Indic 3 as 3).
    body = json.dumps({"queue": text})
    with serving(stats=Reply(body, content_type="application/json")) as srv:
        spec = HttpJsonSource(url=srv.url("/stats"), path="queue")
        error = await refused(build_source(spec, name="depth"))
    assert str(error).startswith("depth: ")
    assert str(error).endswith(f"path queue: value {text!r} is not a number")


async def test_outages_then_back() -> None:
    port = free_port()
    src = build_source(
        HttpJsonSource(url=f"http://127.0.0.1:{port}/stats", path="data.queue.depth", timeout=0.3),
        name="depth",
    )
    with pytest.raises(TemporarySourceError, match="cannot connect"):
        await src.read()
    server = LocalHttpServer(port=port).start()
    try:
        server.routes["/stats"] = Reply(mode="stall")
        with pytest.raises(TemporarySourceError, match=r"in time|timeout"):
            await src.read()
        server.routes["/stats"] = Reply(json.dumps(DOC), mode="drop")
        with pytest.raises(TemporarySourceError, match="dropped"):
            await src.read()
        server.routes["/stats"] = Reply(json.dumps(DOC))
        assert await src.read() == 12.0
    finally:
        server.stop()
        await src.aclose()


json_docs = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.sampled_from("abc0123"), c, max_size=4),
    max_leaves=15,
)
paths = st.lists(st.sampled_from(["a", "b", "c", "0", "1", "3", "x"]), min_size=1, max_size=4).map(
    ".".join
)


def _walk(doc, path: str):
    for part in path.split("."):
        if isinstance(doc, dict) and part in doc:
            doc = doc[part]
        elif isinstance(doc, list) and part.isdigit() and int(part) < len(doc):
            doc = doc[int(part)]
        else:
            return None
    return doc


@given(json_docs, paths)
def test_a_number_only_when_the_document_holds_that_number(doc, path: str) -> None:
    try:
        value = value_at_path(doc, path)
    except JsonPathError:
        return
    raw = _walk(doc, path)
    assert not isinstance(raw, bool) and raw is not None
    assert math.isfinite(value)
    assert value == float(raw)


@given(st.binary(max_size=80), paths)
def test_any_body_gives_a_number_or_source_error(body: bytes, path: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body)

    async def run() -> None:
        src = HttpJsonSourceReader(
            HttpJsonSource(url="http://svc/stats", path=path),
            name="d",
            transport=httpx.MockTransport(handler),
        )
        try:
            assert math.isfinite(await src.read())
        except SourceError:
            pass
        finally:
            await src.aclose()

    anyio.run(run)
