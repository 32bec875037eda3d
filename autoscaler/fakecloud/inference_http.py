"""The fake vLLM's HTTP edge: OpenAI-compatible routes served by every simulator.

Where each provider's deployments answer (the provider module says, with `inference_label` and
`served_model`):
- NeevCloud: `/inference/{name}.{project}.{org}/v1/...`, the simulator's stand-in for the
  public hostname `<name>.<project>.<org>.<region>...`; it is the deployment's `endpoint_url`
  once `ready` (null before, as seed 001 says). The name, not the id, is in it, so a deployment
  recreated with the same name answers at the same URL. `model` must be the `model_id`.
- NetMind: `/inference/{service_id}/v1/...`, the `endpoint_metadata.endpoint_url` once
  `available` (seed 003 elides endpoint_metadata: our choice). Any `model` is accepted.
- Nebius-style: one shared base `/v1/...` on the simulator itself, routed by `model` = the
  endpoint's `routing_key` (seed 004: "404 Not Found" while the endpoint starts).
A deployment that is initializing, deleted or gone answers 404 in OpenAI's error shape: one
listener serves every deployment, so a refused connection (what a real stale NeevCloud hostname
does) cannot be told apart per path; 404 is the other answer the issue allows.

Routes: `POST /v1/chat/completions`, `/v1/completions`, `/v1/embeddings`, `GET /v1/models`
under each base; `GET /inference/{label}/metrics` (one deployment, as its vLLM would export) and
`GET /metrics` (every serving deployment, with a `deployment` label beside `model_name`);
`GET|POST /_sim/inference` (the `InferenceSettings`, partial update).
Requests need `Authorization: Bearer <inference key>` (401 otherwise). Generation runs on the
wall clock whatever the simulator's lifecycle clock: a prefill of `ttft` seconds after admission,
then one token every 1/`token_rate` seconds; at most serving replicas x `max_num_seqs` run at
once per deployment, the rest wait first in, first out. A client that goes away frees its place;
a stream cut by a fault or by the deployment's deletion closes the connection mid-response.
The scheduling and the metrics are the pure `autoscaler.fakecloud.inference`; this module is
the I/O.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from autoscaler.fakecloud.faults import SimulatedDrop
from autoscaler.fakecloud.inference import (
    BadRequest,
    InferenceSettingsError,
    Kind,
    RequestPlan,
    embedding,
    openai_error,
    plan_request,
    token_text,
    usage,
)
from autoscaler.fakecloud.inference_fake import ClientGone, InferenceFake, Interrupted
from autoscaler.fakecloud.state import SimDeployment

METRICS_TYPE = "text/plain; version=0.0.4; charset=utf-8"


# --- HTTP -------------------------------------------------------------------------------------


def fake_of(request: Request) -> InferenceFake:
    fake: InferenceFake = request.app.state.inference
    return fake


def error(status: int, message: str, param: str | None = None) -> Response:
    return JSONResponse(openai_error(status, message, param), status_code=status)


def _target(request: Request, fake: InferenceFake, model: str | None) -> SimDeployment | None:
    label = request.path_params.get("label")
    if label is None:  # the shared base: routed by model
        return next((d for d in fake.serving() if fake.hooks.served_model(d) == model), None)
    found = fake.serving(label)
    return found[0] if found else None


def _chunk(obj: str, rid: str, created: int, model: str, choices: list[Any]) -> dict[str, Any]:
    return {"id": rid, "object": obj, "created": created, "model": model, "choices": choices}


def _sse(data: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(data, separators=(",", ":")).encode() + b"\n\n"


async def _generate(request: Request, kind: Kind) -> Response:
    fake = fake_of(request)
    if not fake.key_ok(request.headers.get("authorization")):
        return error(401, "invalid inference key (Authorization: Bearer <key>)")
    try:
        body = json.loads(await request.body() or b"null")
    except ValueError:
        return error(400, "request body is not valid JSON")
    if not isinstance(body, dict):
        return error(400, "request body must be a JSON object")
    try:
        plan = plan_request(kind, body, fake.settings)
    except BadRequest as exc:
        return error(400, exc.message, exc.param)
    dep = _target(request, fake, plan.model)
    if dep is None:
        if request.path_params.get("label") is None:
            return error(404, f"The model `{plan.model}` does not exist.", "model")
        return error(404, "this deployment is not serving (initializing, deleted or unknown)")
    served = fake.hooks.served_model(dep)
    if served is not None and plan.model != served:
        return error(404, f"The model `{plan.model}` does not exist.", "model")
    if fake.settings.take_error(fake.sim.rng.random()):
        return error(fake.settings.error_status, "simulated upstream error")
    if plan.stream and kind != "embedding":
        return StreamingResponse(
            _stream(fake, dep, plan),
            media_type="text/event-stream",
            headers={"cache-control": "no-cache"},
        )
    return await _whole(request, fake, dep, plan)


async def _whole(
    request: Request, fake: InferenceFake, dep: SimDeployment, plan: RequestPlan
) -> Response:
    text: list[str] = []
    try:
        async with aclosing(fake.tokens(dep, plan, request.is_disconnected)) as tokens:
            async for index in tokens:
                text.append(token_text(index))
    except Interrupted:
        return error(503, "the deployment stopped serving during the request")
    except ClientGone:
        return error(499, "client closed the request")
    created = int(time.time())
    model = plan.model
    if plan.kind == "embedding":
        data = [
            {"object": "embedding", "index": i, "embedding": embedding(i)}
            for i in range(plan.inputs)
        ]
        return JSONResponse(
            {
                "object": "list",
                "data": data,
                "model": model,
                "usage": {"prompt_tokens": plan.prompt_tokens, "total_tokens": plan.prompt_tokens},
            }
        )
    content = "".join(text)
    if plan.kind == "chat":
        choice: dict[str, Any] = {
            "index": 0,
            "message": {"role": "assistant", "content": content},
            "logprobs": None,
            "finish_reason": plan.finish_reason,
        }
        obj, rid = "chat.completion", f"chatcmpl-{secrets.token_hex(12)}"
    else:
        choice = {
            "index": 0,
            "text": content,
            "logprobs": None,
            "finish_reason": plan.finish_reason,
        }
        obj, rid = "text_completion", f"cmpl-{secrets.token_hex(12)}"
    return JSONResponse(
        {
            **_chunk(obj, rid, created, model, [choice]),
            "usage": usage(plan.prompt_tokens, len(text)),
        }
    )


async def _stream(
    fake: InferenceFake, dep: SimDeployment, plan: RequestPlan
) -> AsyncIterator[bytes]:
    """OpenAI's SSE: `data: {chunk}` per token, a finish chunk, the usage chunk when asked
    (`stream_options.include_usage`), `data: [DONE]`. A scheduled cut closes the connection
    after `cut_after_chunks` chunks."""
    created = int(time.time())
    chat = plan.kind == "chat"
    obj = "chat.completion.chunk" if chat else "text_completion"
    rid = f"{'chatcmpl' if chat else 'cmpl'}-{secrets.token_hex(12)}"
    cut = fake.settings.take_cut()
    sent = 0
    extra: dict[str, Any] = {"usage": None} if plan.include_usage else {}

    def choice(text: str | None, finish: str | None) -> dict[str, Any]:
        if chat:
            delta: dict[str, Any] = {} if text is None else {"content": text}
            if text is not None and sent == 0:
                delta = {"role": "assistant", "content": text}
            return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return {"index": 0, "text": text or "", "logprobs": None, "finish_reason": finish}

    generated = 0
    try:
        async with aclosing(fake.tokens(dep, plan, None)) as tokens:
            async for index in tokens:
                if cut is not None and sent >= cut:
                    raise SimulatedDrop()
                piece = choice(token_text(index), None)
                yield _sse({**_chunk(obj, rid, created, plan.model, [piece]), **extra})
                sent += 1
                generated += 1
    except Interrupted as exc:
        raise SimulatedDrop() from exc
    if cut is not None and sent >= cut:
        raise SimulatedDrop()
    finish = choice(None, plan.finish_reason)
    yield _sse({**_chunk(obj, rid, created, plan.model, [finish]), **extra})
    if plan.include_usage:
        final = _chunk(obj, rid, created, plan.model, [])
        yield _sse({**final, "usage": usage(plan.prompt_tokens, generated)})
    yield b"data: [DONE]\n\n"


async def chat_completions(request: Request) -> Response:
    return await _generate(request, "chat")


async def completions(request: Request) -> Response:
    return await _generate(request, "completion")


async def embeddings(request: Request) -> Response:
    return await _generate(request, "embedding")


async def models(request: Request) -> Response:
    fake = fake_of(request)
    if not fake.key_ok(request.headers.get("authorization")):
        return error(401, "invalid inference key (Authorization: Bearer <key>)")
    label = request.path_params.get("label")
    deps = fake.serving(label)
    if label is not None and not deps:
        return error(404, "this deployment is not serving (initializing, deleted or unknown)")
    names = sorted({fake.model_name(d) for d in deps})
    return JSONResponse(
        {
            "object": "list",
            "data": [
                {
                    "id": name,
                    "object": "model",
                    "created": int(time.time()),
                    "owned_by": "vllm",
                    "root": name,
                    "max_model_len": fake.settings.max_model_len,
                }
                for name in names
            ],
        }
    )


async def deployment_metrics(request: Request) -> Response:
    fake = fake_of(request)
    deps = fake.serving(request.path_params["label"])
    if not deps:
        return PlainTextResponse("not serving\n", status_code=404)
    return PlainTextResponse(fake.metrics(deps[:1], with_deployment=False), media_type=METRICS_TYPE)


async def all_metrics(request: Request) -> Response:
    fake = fake_of(request)
    return PlainTextResponse(
        fake.metrics(fake.serving(), with_deployment=True), media_type=METRICS_TYPE
    )


async def settings_route(request: Request) -> Response:
    fake = fake_of(request)
    if request.method == "POST":
        try:
            body = json.loads(await request.body() or b"{}")
            if not isinstance(body, dict):
                raise InferenceSettingsError("the body must be a JSON object of settings")
            fake.settings.update(body)
        except (ValueError, InferenceSettingsError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
    return JSONResponse({"settings": fake.settings.as_dict()})


OPENAI_PATHS = ("/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/models")


def bypass_prefixes(shared_base: bool) -> tuple[str, ...]:
    """Paths the provider API's fault injection and write log leave alone (see faults.py):
    inference has its own faults (`InferenceSettings`). Not `/v1/` as a whole: NetMind's API
    lives there."""
    return ("/inference/", "/metrics", *(OPENAI_PATHS if shared_base else ()))


def routes(shared_base: bool) -> list[BaseRoute]:
    """The inference routes; `shared_base` (Nebius-style) also serves `/v1/...` at the root."""
    table: list[BaseRoute] = []
    for base in [""] if shared_base else ["/inference/{label}"]:
        handlers = (chat_completions, completions, embeddings, models)
        for path, handler in zip(OPENAI_PATHS, handlers, strict=True):
            method = "GET" if handler is models else "POST"
            table.append(Route(base + path, handler, methods=[method]))
    table += [
        Route("/inference/{label}/metrics", deployment_metrics, methods=["GET"]),
        Route("/metrics", all_metrics, methods=["GET"]),
        Route("/_sim/inference", settings_route, methods=["GET", "POST"]),
    ]
    return table


def endpoint_base(request: Request, label: str) -> str:
    """The OpenAI-compatible base of the deployment at `label`, on this simulator's host."""
    return f"{str(request.base_url).rstrip('/')}/inference/{label}/v1"
