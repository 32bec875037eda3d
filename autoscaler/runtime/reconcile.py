"""Finishing what a previous run (or a previous evaluation) left half done: unresolved intents.

At start, before any policy is scheduled, every pending intent is looked at; the deployment is
looked up by name and the intent is resolved by what the provider shows now:
- scale: resolved either way (`applied` says whether the count matches); a stale scale is not
  re-sent, the loop decides again from fresh metrics.
- delete: the spec is re-saved from the intent payload if the spec table lost it; absent,
  terminating, or the name held by another deployment id -> done; still there -> resolved
  as not applied, never re-sent (like a stale scale: the loop decides again, and deletes at
  once if the deployment is still idle).
- create / recreate: present and usable -> adopted (its id recorded); absent -> created again
  from the spec in the intent (or the saved spec); `failed` under a recreate -> deleted first;
  `terminating` -> left pending (the policy's runner continues it on its next evaluations,
  and acts on nothing else until it is resolved).
Never a second deployment: every path looks the name up first.

An intent whose policy is no longer configured is resolved as `orphaned` without touching
the provider (removing a policy never deletes its deployment). One whose row cannot be used
(payload not a JSON object or of the wrong types, an unknown kind: `payload_problem`,
`Intent.unreadable`) is resolved as `unreadable`, logged at error level, also without a
provider call: what it meant is unknown, so nothing is sent on it, and leaving it pending
would hold its policy forever. The row stays in the table for a human; the spec it may have
carried is also in the spec row, and the loop decides again from what the provider shows.
One intent's failure (provider, store, a bug) leaves it pending and never stops the others.

One intent is moved forward by one caller at a time: on election the daemon reconciles every
pending intent while the policy's runner may be continuing the same one. The second caller
waits, sees the intent resolved and does nothing (without this, both looked the deployment up,
both saw it live, and both sent the delete or the create).
Must not live here: the normal loop, scheduling.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import structlog

from autoscaler.policy.model import Policy
from autoscaler.providers.base import Provider
from autoscaler.runtime import actions
from autoscaler.runtime.actions import ActionContext
from autoscaler.store.base import FencedError, Intent
from autoscaler.textcut import cut

log = structlog.get_logger("autoscaler.reconcile")


_intent_locks: dict[int, tuple[asyncio.Lock, int]] = {}  # intent id -> (lock, users)


async def continue_intent(
    ctx: ActionContext, intent: Intent, policy: Policy | None, provider: Provider | None
) -> dict[str, Any] | None:
    """Move one pending intent forward. Returns the outcome written when it was resolved, or
    None when it must wait (deployment still terminating). Provider errors propagate and
    leave it pending."""
    lock, users = _intent_locks.get(intent.id, (asyncio.Lock(), 0))
    _intent_locks[intent.id] = (lock, users + 1)
    try:
        async with lock:
            pending = await ctx.store.pending_intents(intent.policy)
            if all(p.id != intent.id for p in pending):
                return {"ok": True, "reconciled": "already_resolved"}
            return await _continue(ctx, intent, policy, provider)
    finally:
        lock, users = _intent_locks[intent.id]
        if users <= 1:
            del _intent_locks[intent.id]
        else:
            _intent_locks[intent.id] = (lock, users - 1)


async def _continue(
    ctx: ActionContext, intent: Intent, policy: Policy | None, provider: Provider | None
) -> dict[str, Any] | None:
    if policy is None or provider is None:
        outcome: dict[str, Any] = {"ok": False, "reconciled": "orphaned"}
        await ctx.resolve(intent, outcome)
        return outcome
    problem = intent.unreadable or payload_problem(intent.payload)
    if problem:
        return await _resolve_unreadable(ctx, intent, problem)
    payload = intent.payload
    name = str(payload.get("name") or policy.deployment.name)
    found = await provider.find(name)

    if intent.kind == "scale":
        target = int(payload.get("replicas", 0))
        applied = found is not None and found.replicas == target
        outcome = {"ok": applied, "reconciled": "scale", "applied": applied}
        await ctx.resolve(intent, outcome)
        return outcome

    if intent.kind == "delete":
        spec = payload.get("spec")
        if isinstance(spec, Mapping):
            saved = await actions.saved_spec(ctx, policy)
            if not saved or saved.get("create") is None:
                record = actions.spec_record(policy, spec, int(payload.get("replicas", 1)))
                await ctx.store.save_spec(policy.name, record, epoch=ctx.epoch())
        meant = payload.get("deployment_id")
        if found is None or found.status == "terminating":
            outcome = {"ok": True, "reconciled": "delete", "deleted": True}
        elif meant and found.id != meant:
            # The name is held by another deployment (deployed again since): the one this
            # intent deleted is gone, and the new one was never decided on.
            outcome = {"ok": True, "reconciled": "delete", "deleted": True, "other": found.id}
        else:
            # Still there: the delete was never sent (or not yet seen). It is not re-sent: it
            # was decided on metrics of another time, and the deployment may be busy again.
            # The loop decides again from fresh metrics; the idle clock it saved before the
            # intent deletes at once if the deployment is still idle.
            outcome = {"ok": False, "reconciled": "delete", "applied": False}
        await ctx.resolve(intent, outcome)
        return outcome

    # create / recreate
    replicas = max(1, int(payload.get("replicas", policy.replicas.min or 1)))
    spec_payload = payload.get("spec")
    spec = dict(spec_payload) if isinstance(spec_payload, Mapping) else None
    if found is not None and found.status == "terminating":
        return None
    if found is not None and found.status == "failed" and intent.kind == "recreate":
        # Never delete what could not be created again: the spec is checked first.
        spec = await actions.required_spec(ctx, policy, spec)
        await ctx.check_leader()
        await provider.delete(found)
        actions.crash_point("after_delete")
        return None
    result = await actions.create(ctx, policy, provider, replicas, spec=spec, intent=intent)
    return {"ok": True, "reconciled": intent.kind, "deployment_id": result.id}


async def _resolve_unreadable(ctx: ActionContext, intent: Intent, problem: str) -> dict[str, Any]:
    """Nothing is sent on it: what it meant is unknown. Resolved (the row, payload and all,
    stays in the table for a human), the policy's loop decides again from what the provider
    shows, so the policy is not held forever behind it."""
    log.error(
        "intent_unreadable",
        policy=intent.policy,
        intent=intent.id,
        kind=intent.kind,
        error=problem,
        then="resolved without a provider call; the loop decides again",
    )
    outcome = {"ok": False, "reconciled": "unreadable", "error": problem}
    await ctx.resolve(intent, outcome)
    return outcome


def payload_problem(payload: Mapping[str, Any]) -> str:
    """What makes a (JSON object) payload unusable, "" when nothing: the fields reconcile
    reads, of the types the actions write them with."""
    name, replicas, spec = payload.get("name"), payload.get("replicas"), payload.get("spec")
    meant = payload.get("deployment_id")
    if name is not None and (not isinstance(name, str) or not name.strip()):
        return f"payload name is not a deployment name: {cut(repr(name), 80)}"
    if replicas is not None and (
        isinstance(replicas, bool) or not isinstance(replicas, int) or not 0 <= replicas <= 10**6
    ):
        return f"payload replicas is not a count: {cut(repr(replicas), 80)}"
    if spec is not None and not isinstance(spec, Mapping):
        return f"payload spec is not an object: {cut(repr(spec), 80)}"
    if meant is not None and not isinstance(meant, str):
        return f"payload deployment_id is not text: {cut(repr(meant), 80)}"
    return ""


async def reconcile_all(
    ctx: ActionContext,
    policies: Mapping[str, Policy],
    providers: Mapping[str, Provider],
) -> list[tuple[Intent, dict[str, Any] | None, str | None]]:
    """Every pending intent, oldest first. Returns (intent, outcome or None, error or None);
    outcome None and no error: still in progress (left to the policy's runner)."""
    results: list[tuple[Intent, dict[str, Any] | None, str | None]] = []
    pending = sorted(await ctx.store.pending_intents(), key=lambda i: i.id)
    for intent in pending:
        policy = policies.get(intent.policy)
        provider = providers.get(policy.deployment.provider) if policy else None
        try:
            outcome = await continue_intent(ctx, intent, policy, provider)
        except FencedError:
            raise
        except Exception as exc:
            # A provider error or an aborted action, but also a store error or a bug: the
            # intent stays pending (its runner moves it on later) and the others go on.
            log.warning(
                "intent_unresolved",
                policy=intent.policy,
                intent=intent.id,
                kind=intent.kind,
                error=str(exc),
            )
            results.append((intent, None, str(exc)))
            continue
        log.info(
            "intent_reconciled",
            policy=intent.policy,
            intent=intent.id,
            kind=intent.kind,
            outcome=outcome if outcome is not None else "in_progress",
        )
        results.append((intent, outcome, None))
    return results


async def reconcile_pending(
    ctx: ActionContext, policies: Mapping[str, Policy], providers: Mapping[str, Provider]
) -> tuple[list[dict[str, Any]], dict[str, Intent]]:
    """`reconcile_all`, as the daemon reports it (one row per intent), and the oldest intent
    still open per policy: its runner finishes it."""
    results = await reconcile_all(ctx, policies, providers)
    rows = [
        {"intent": i.id, "policy": i.policy, "kind": i.kind, "outcome": o, "error": e}
        for i, o, e in results
    ]
    oldest: dict[str, Intent] = {}
    for intent in sorted(await ctx.store.pending_intents(), key=lambda i: i.id):
        oldest.setdefault(intent.policy, intent)
    return rows, oldest
