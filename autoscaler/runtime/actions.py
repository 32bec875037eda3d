"""Provider actions with write-ahead intents: scale, delete to zero, create / recreate.

Lives here: the one way the daemon changes anything at a provider. Every action is
    begin_intent (committed) -> provider call -> resolve_intent (committed)
so a crash at any point leaves a pending intent that `reconcile.py` finishes on the next start.

Spec capture (delete to zero, recreate after `failed`): the captured create spec is the live
deployment's `DeploymentInfo.spec` overlaid with the policy's `deployment.create`; for a key
both set, the POLICY WINS (it is what the operator wrote down and may have changed on purpose,
e.g. a new model revision); every key only the provider reports is kept, so nothing the running
deployment had is lost. The spec is saved (`store.save_spec`) AND carried in the intent payload
before the delete is sent: it can only be lost if both commits are lost.

Creates never make a second deployment: every create first looks the name up and adopts what
exists (and `Provider.create` adopts by name as well).

Test hook: `AUTOSCALER_CRASH_AT=<point>:<n>` kills this process with SIGKILL the n-th time
(1-based) execution reaches the named point (`crash_point`). Tests use it to crash between an
intent and its call, between a delete and its record, and so on. `<point>:<n>:stop` sends
SIGSTOP instead (once): the process freezes right there, and the leader-election tests resume
it with SIGCONT after its lease has passed to another daemon, to show it does not act late.
It is read once per process and does nothing when unset; never set it in production.

Must not live here: deciding (core), scheduling, reading metrics.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog

from autoscaler.policy.model import Policy
from autoscaler.providers.base import DeploymentInfo, Provider, ProviderError, TemporaryError
from autoscaler.runtime.stored import read_row
from autoscaler.store.base import Intent, IntentKind, Store
from autoscaler.textcut import cut

log = structlog.get_logger("autoscaler.actions")

CRASH_ENV = "AUTOSCALER_CRASH_AT"
CRASH_POINTS = (
    "after_state_saved",  # core state saved, no intent yet
    "after_intent",  # intent committed, provider not called yet
    "after_call",  # provider call returned, intent not resolved yet
    "after_resolve",  # intent resolved
    "after_spec_saved",  # delete to zero: spec committed, intent not yet
    "after_delete",  # delete sent, not recorded
    "after_create",  # create sent, id not recorded
)


class _CrashHook:
    def __init__(self) -> None:
        self.point: str | None = None
        self.remaining = 0
        self.signal = signal.SIGKILL
        raw = os.environ.get(CRASH_ENV, "").strip()
        if raw:
            point, _, rest = raw.partition(":")
            count, _, how = rest.partition(":")
            self.point = point
            self.remaining = int(count or "1")
            if how == "stop":
                self.signal = signal.SIGSTOP

    def hit(self, point: str) -> None:
        if self.point != point:
            return
        self.remaining -= 1
        if self.remaining <= 0:
            self.point = None  # a stopped process resumes here; it must not stop again
            os.kill(os.getpid(), self.signal)


_crash = _CrashHook()
_in_process_hook: Callable[[str], None] | None = None


def crash_point(point: str) -> None:
    """Test hook: see the module docstring. A no-op unless $AUTOSCALER_CRASH_AT names it or
    an in-process test installed a hook."""
    _crash.hit(point)
    if _in_process_hook is not None:
        _in_process_hook(point)


def install_crash_hook(hook: Callable[[str], None] | None) -> None:
    """In-process test hook: `hook(point)` runs at every crash point and may raise (a
    BaseException) to abandon the evaluation there, as a killed process would. None removes
    it. Never used outside tests."""
    global _in_process_hook
    _in_process_hook = hook


def captured_spec(live: Mapping[str, Any] | None, policy: Policy) -> dict[str, Any]:
    """The create spec to keep across zero: live spec overlaid with the policy's `create`."""
    merged: dict[str, Any] = dict(live or {})
    if policy.deployment.create:
        merged.update(_plain(policy.deployment.create))
    return merged


def _plain(value: Any) -> Any:
    """Read-only mappings (MappingProxyType) and tuples into JSON-ready dicts and lists."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def spec_record(policy: Policy, create: Mapping[str, Any], replicas: int) -> dict[str, Any]:
    """What `store.save_spec` keeps: enough to deploy the same thing again, alone."""
    return {
        "name": policy.deployment.name,
        "provider": policy.deployment.provider,
        "create": dict(create),
        "replicas": replicas,
        "captured_at": time.time(),
    }


class ActionAborted(Exception):
    """The action was not attempted (fenced, or a precondition failed); nothing changed."""


def recreatable(
    provider: Provider, deployment: DeploymentInfo, spec: dict[str, Any]
) -> dict[str, Any]:
    """`spec` when the provider would take it to create `deployment` again; else nothing is
    deleted (ActionAborted naming what is wrong): a spec field the provider reported
    missing or garbage, and the policy's `deployment.create` does not set."""
    try:
        provider.validate_spec(deployment.name, spec)
    except ProviderError as exc:
        raise ActionAborted(
            f"not deleting {deployment.name!r}: it could not be created again from the spec "
            f"captured for it ({exc.message})"
        ) from exc
    return spec


@dataclass
class ActionContext:
    """What an action needs besides the policy and the provider."""

    store: Store
    epoch: Callable[[], int | None]  # the lease epoch to pass to store writes
    check_leader: Callable[[], Awaitable[None]]  # raises FencedError when not the leader

    async def begin(self, policy: str, kind: IntentKind, payload: dict[str, Any]) -> Intent:
        intent = await self.store.begin_intent(policy, kind, payload, epoch=self.epoch())
        crash_point("after_intent")
        return intent

    async def resolve(self, intent: Intent, outcome: dict[str, Any]) -> None:
        await self.store.resolve_intent(intent.id, outcome, epoch=self.epoch())
        crash_point("after_resolve")


async def scale(
    ctx: ActionContext,
    policy: Policy,
    provider: Provider,
    deployment: DeploymentInfo,
    replicas: int,
) -> DeploymentInfo:
    payload = {
        "name": deployment.name,
        "provider": policy.deployment.provider,
        "deployment_id": deployment.id,
        "from": deployment.replicas,
        "replicas": replicas,
    }
    intent = await ctx.begin(policy.name, "scale", payload)
    await ctx.check_leader()
    try:
        result = await provider.scale(deployment, replicas)
    except ProviderError as exc:
        await ctx.resolve(intent, {"ok": False, "error": str(exc), "permanent": exc.permanent})
        raise
    crash_point("after_call")
    await ctx.resolve(intent, {"ok": True, "replicas": result.replicas})
    return result


async def delete_to_zero(
    ctx: ActionContext, policy: Policy, provider: Provider, deployment: DeploymentInfo
) -> None:
    """Capture and persist the spec, then delete. The spec is committed twice (spec table and
    intent payload) before the provider hears anything."""
    create = recreatable(provider, deployment, captured_spec(deployment.spec, policy))
    record = spec_record(policy, create, deployment.replicas)
    record["deployment_id"] = deployment.id
    await ctx.store.save_spec(policy.name, record, epoch=ctx.epoch())
    crash_point("after_spec_saved")
    payload = {
        "name": deployment.name,
        "provider": policy.deployment.provider,
        "deployment_id": deployment.id,
        "spec": create,
        "replicas": deployment.replicas,
    }
    intent = await ctx.begin(policy.name, "delete", payload)
    await ctx.check_leader()
    try:
        await provider.delete(deployment)
    except ProviderError as exc:
        await ctx.resolve(intent, {"ok": False, "error": str(exc), "permanent": exc.permanent})
        raise
    crash_point("after_delete")
    await ctx.resolve(intent, {"ok": True, "deleted": deployment.id})


async def saved_spec(ctx: ActionContext, policy: Policy) -> dict[str, Any] | None:
    """The spec row when it is usable (`spec_problem`), else None (a row that is not JSON is
    logged by `read_row`): reconcile then writes the delete intent's copy over it."""
    saved = await read_row(ctx.store.load_spec, policy, "spec")
    return None if saved is None or spec_problem(saved) else saved


def spec_problem(saved: Mapping[str, Any]) -> str:
    """What makes a stored spec row unusable, "" when nothing: its `create` must be an object
    (`spec_record` always writes one)."""
    create = saved.get("create")
    if not isinstance(create, Mapping):
        return f"its create is not an object: {cut(repr(create), 80)}"
    return ""


async def spec_for_create(ctx: ActionContext, policy: Policy) -> dict[str, Any] | None:
    """The saved spec (captured at delete) or, when none was ever captured, the policy's.

    A spec row that exists but cannot be used (not JSON, the wrong shape: a torn write, a bad
    restore) is never read as a spec. The policy's own `deployment.create` (checked against
    the provider's create rules when the policy loaded) brings the deployment back then,
    with a warning: what the row held beyond it is lost, but a model left at zero fails
    every request until a human comes. With no `deployment.create` either: ActionAborted,
    nothing created, the reason in /status and the log."""
    try:
        saved = await ctx.store.load_spec(policy.name)
        problem = "" if saved is None else spec_problem(saved)
    except ValueError as exc:
        saved, problem = None, str(exc)
    if problem and not policy.deployment.create:
        raise ActionAborted(
            f"not creating {policy.deployment.name!r}: the spec stored for policy "
            f"{policy.name!r} cannot be used ({problem}) and the policy has no "
            "deployment.create; fix its policy_spec row, or give the policy a "
            "deployment.create"
        )
    if problem:
        log.warning(
            "spec_unreadable",
            policy=policy.name,
            deployment=policy.deployment.name,
            error=problem,
            then="creating from the policy's deployment.create alone",
        )
    elif saved is not None:
        spec = dict(saved["create"])
        # A policy `create` edited since the capture still wins for the keys it sets.
        if policy.deployment.create:
            spec.update(_plain(policy.deployment.create))
        return spec
    if policy.deployment.create:
        plain: dict[str, Any] = _plain(policy.deployment.create)
        return plain
    return None


async def required_spec(
    ctx: ActionContext, policy: Policy, spec: dict[str, Any] | None
) -> dict[str, Any]:
    """`spec`, else `spec_for_create`; ActionAborted when there is none to create from."""
    if spec is None:
        spec = await spec_for_create(ctx, policy)
    if spec is None:
        raise ActionAborted(
            f"no spec to create {policy.deployment.name!r}: nothing was captured and the "
            "policy has no deployment.create"
        )
    return spec


async def create(
    ctx: ActionContext,
    policy: Policy,
    provider: Provider,
    replicas: int,
    *,
    spec: dict[str, Any] | None = None,
    intent: Intent | None = None,
) -> DeploymentInfo:
    """Deploy the policy's deployment again (or adopt it when the name exists).

    `intent`: continue an already committed intent (reconcile, recreate) instead of writing one.
    """
    name = policy.deployment.name
    spec = await required_spec(ctx, policy, spec)
    if intent is None:
        payload = {
            "name": name,
            "provider": policy.deployment.provider,
            "spec": spec,
            "replicas": replicas,
        }
        intent = await ctx.begin(policy.name, "create", payload)
    await ctx.check_leader()
    try:
        existing = await provider.find(name)
        if existing is not None and existing.status not in ("terminating", "failed"):
            result = existing
            adopted = True
        elif existing is not None:
            raise TemporaryError(
                f"deployment {name!r} is {existing.status}; create waits until it is gone"
            )
        else:
            await ctx.check_leader()
            result = await provider.create(name, spec, replicas)
            adopted = False
    except ProviderError as exc:
        await ctx.resolve(intent, {"ok": False, "error": str(exc), "permanent": exc.permanent})
        raise
    crash_point("after_create")
    record = spec_record(policy, spec, replicas)
    record["deployment_id"] = result.id
    await ctx.store.save_spec(policy.name, record, epoch=ctx.epoch())
    await ctx.resolve(intent, {"ok": True, "deployment_id": result.id, "adopted": adopted})
    return result


async def begin_recreate(
    ctx: ActionContext,
    policy: Policy,
    provider: Provider,
    failed: DeploymentInfo,
    replicas: int,
) -> Intent:
    """A `failed` deployment the policy wants recreated: capture and save its spec, commit a
    `recreate` intent, delete it. The intent stays pending; `reconcile.continue_intent` creates
    it again once the name is free (the runner calls it on its next evaluations)."""
    spec = recreatable(provider, failed, captured_spec(failed.spec, policy))
    record = spec_record(policy, spec, replicas)
    record["deployment_id"] = failed.id
    await ctx.store.save_spec(policy.name, record, epoch=ctx.epoch())
    payload = {
        "name": failed.name,
        "provider": policy.deployment.provider,
        "deployment_id": failed.id,
        "spec": spec,
        "replicas": replicas,
    }
    intent = await ctx.begin(policy.name, "recreate", payload)
    await ctx.check_leader()
    try:
        await provider.delete(failed)
    except ProviderError as exc:
        await ctx.resolve(intent, {"ok": False, "error": str(exc), "permanent": exc.permanent})
        raise
    crash_point("after_delete")
    return intent
