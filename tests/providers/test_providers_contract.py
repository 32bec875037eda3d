"""Contract tests: our OpenAPI description of NeevCloud's documented deployments API
(contracts/neevcloud-openapi.yaml, provenance in its header); every request the NeevCloud
client sends and every response the simulator gives are validated against it with
openapi-core (including error responses, 201 deploy and 204 delete)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from openapi_core import OpenAPI
from openapi_core.datatypes import RequestParameters
from werkzeug.datastructures import Headers, ImmutableMultiDict

from tests.providers.helpers import SPECS, TOKEN, client, in_process, run

CONTRACT = Path(__file__).resolve().parent / "contracts" / "neevcloud-openapi.yaml"
SERVER = "https://api.ai.neevcloud.com/aimodels"  # the document's server URL


def contract() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(CONTRACT.read_text())
    return document


class OARequest:
    def __init__(self, request: httpx.Request):
        self.host_url = f"{request.url.scheme}://{request.url.host}"
        self.path = request.url.path
        self.method = request.method.lower()
        self.body = request.content or None
        self.content_type = request.headers.get("content-type", "")
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(list(request.url.params.multi_items())),
            header=Headers(list(request.headers.items())),
            cookie=ImmutableMultiDict(),
        )


class OAResponse:
    def __init__(self, response: httpx.Response, body: bytes):
        self.status_code = response.status_code
        self.content_type = response.headers.get("content-type", "")
        self.headers = Headers(list(response.headers.items()))
        self.data = body or None


class Recording(httpx.AsyncBaseTransport):
    """Passes requests to the in-process simulator and keeps each exchange."""

    def __init__(self, inner: httpx.AsyncBaseTransport):
        self.inner = inner
        self.exchanges: list[tuple[httpx.Request, httpx.Response, bytes]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        body = await response.aread()
        self.exchanges.append((request, response, body))
        return httpx.Response(
            response.status_code, headers=response.headers, content=body, request=request
        )


@pytest.fixture(scope="module")
def openapi() -> OpenAPI:
    return OpenAPI.from_dict(contract())


def validate_all(openapi: OpenAPI, recording: Recording) -> set[tuple[str, int]]:
    seen = set()
    for request, response, body in recording.exchanges:
        oa_request = OARequest(request)
        if oa_request.path.endswith("/api/v1/auth/login"):
            continue  # the tenant login is another API, not in this document
        openapi.validate_request(oa_request)
        openapi.validate_response(oa_request, OAResponse(response, body))
        seen.add((request.method, response.status_code))
    return seen


def test_the_contract_has_all_five_operations(openapi: OpenAPI) -> None:
    ops = {
        op["operationId"]
        for item in contract()["paths"].values()
        for method, op in item.items()
        if method != "parameters"
    }
    assert ops == {
        "listDeployedAIModels",
        "deployAIModel",
        "getDeployedAIModel",
        "deleteDeployedAIModel",
        "scaleDeployedAIModel",
    }


def test_client_requests_and_simulator_responses_follow_the_document(openapi: OpenAPI) -> None:
    app, _sim, clock = in_process("neevcloud", provision_seconds=30, terminate_seconds=10)
    recording = Recording(httpx.ASGITransport(app=app))

    async def scenario() -> None:
        p = client("neevcloud", SERVER, clock, transport=recording)
        info = await p.create("chat-llama", SPECS["neevcloud"], 2)  # list + deploy (201)
        await p.wait_ready("chat-llama", 600)  # list, then scale (200)
        for i in range(3):
            await p.create(f"extra-{i}", SPECS["neevcloud"], 1)
        assert len(await p.list()) == 4
        got = await p.get(info.id)  # type: ignore[attr-defined]
        assert got.status == "ready"
        await p.delete(info)  # 204
        clock.advance(60)
        await p.delete(info)  # gone: 404 ErrorResponse, treated as done

    run(scenario())
    seen = validate_all(openapi, recording)
    assert {("POST", 201), ("GET", 200), ("PUT", 200), ("DELETE", 204), ("DELETE", 404)} <= seen


PREFIX = "/aimodels/api/v1beta1/orgs/org-x/projects/prj-y/aimodels"
GOOD = {"name": "chat-llama", **{k: v for k, v in SPECS["neevcloud"].items()}}
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ERROR_CASES: list[tuple[str, str, dict[str, Any] | None, dict[str, str], int, str]] = [
    ("POST", PREFIX, {**GOOD, "name": "Chat_Llama"}, AUTH, 400, "invalid_request"),
    ("POST", PREFIX, {**GOOD, "name": "ab"}, AUTH, 400, "invalid_request"),
    ("POST", PREFIX, {**GOOD, "name": "a" * 31}, AUTH, 400, "invalid_request"),
    ("POST", PREFIX, {**GOOD, "name": "chat-"}, AUTH, 400, "invalid_request"),
    ("POST", PREFIX, {**GOOD, "gpu_count": 0}, AUTH, 400, "invalid_request"),
    ("POST", PREFIX, {**GOOD, "catalog_id": "meta-llama/x"}, AUTH, 400, "invalid_request"),
    (
        "POST",
        PREFIX,
        {k: v for k, v in GOOD.items() if k != "plan_id"},
        AUTH,
        400,
        "invalid_request",
    ),
    ("POST", PREFIX, GOOD, {}, 401, "unauthorized"),
    ("POST", PREFIX, GOOD, {"Authorization": "Bearer wrong"}, 401, "unauthorized"),
    ("GET", PREFIX + "/dep-unknown", None, AUTH, 404, "not_found"),
    ("DELETE", PREFIX + "/dep-unknown", None, AUTH, 404, "not_found"),
    ("PUT", PREFIX + "/dep-unknown/scale", {"replicas": 2}, AUTH, 404, "not_found"),
    ("PUT", PREFIX + "/{id}/scale", {"replicas": 0}, AUTH, 400, "invalid_request"),
    ("PUT", PREFIX + "/{id}/scale", {}, AUTH, 400, "invalid_request"),
    ("POST", PREFIX, GOOD, AUTH, 400, "already_exists"),  # duplicate name
]


@pytest.mark.parametrize(("method", "path", "body", "headers", "status", "code"), ERROR_CASES)
def test_simulator_error_responses_follow_the_document(
    openapi: OpenAPI,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    headers: dict[str, str],
    status: int,
    code: str,
) -> None:
    app, _sim, _clock = in_process("neevcloud", provision_seconds=0)

    async def scenario() -> tuple[httpx.Request, httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=SERVER) as http:
            made = await http.post(PREFIX.removeprefix("/aimodels"), json=GOOD, headers=AUTH)
            assert made.status_code == 201
            url = "https://api.ai.neevcloud.com" + path.replace("{id}", made.json()["id"])
            response = await http.request(method, url, json=body, headers=headers)
            return response.request, response

    request, response = run(scenario())
    assert response.status_code == status
    assert response.json()["code"] == code
    openapi.validate_response(OARequest(request), OAResponse(response, response.content))


def test_list_clamps_page_and_limit_since_it_documents_no_400(openapi: OpenAPI) -> None:
    app, _sim, _clock = in_process("neevcloud", provision_seconds=0)

    async def scenario() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=SERVER) as http:
            return [
                await http.get(PREFIX.removeprefix("/aimodels"), params=q, headers=AUTH)
                for q in ({"page": 0}, {"limit": 101}, {"limit": "x"})
            ]

    for response in run(scenario()):
        assert response.status_code == 200
        openapi.validate_response(
            OARequest(response.request), OAResponse(response, response.content)
        )
    pages = [r.json()["pagination"] for r in run(scenario())]
    assert [(p["current_page"], p["items_per_page"]) for p in pages] == [(1, 20), (1, 100), (1, 20)]
