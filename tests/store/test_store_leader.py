"""Leadership over a real store: one leader among several, takeover after a stall with a
higher epoch, fencing of the old leader's late writes, no two leaders at once when the
leader's database connections are killed, and a SIGSTOPped leader process that wakes up
refusing to act."""

from __future__ import annotations

import os
import secrets
import signal
import sys
import textwrap
from collections.abc import AsyncIterator
from typing import Any

import anyio
import asyncpg
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream

from autoscaler.store import FencedError, Lease, Store
from autoscaler.store.leader import Leadership, default_holder
from autoscaler.store.postgres import PostgresStore
from tests.store.conftest import PG_ADMIN_DSN, Backend

pytestmark = pytest.mark.anyio

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TTL = 1.5  # for tests that wait for a lease to run out
LONG_TTL = 30.0  # for tests that only look at roles: a busy machine must not expire it


class StallableStore:
    """A real store whose lease renewals can be made to hang, as for a stalled daemon."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.stalled = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def acquire_lease(self, cluster: str, holder: str, ttl: float) -> Lease | None:
        if self.stalled:
            await anyio.sleep_forever()
        return await self.inner.acquire_lease(cluster, holder, ttl)


@pytest.fixture
async def two_stores(backend: Backend) -> AsyncIterator[tuple[Store, Store]]:
    a, b = backend.new_store(), backend.new_store()
    await a.open()
    await b.open()
    try:
        yield a, b
    finally:
        await a.close()
        await b.close()


def test_holder_ids_are_unique_and_name_the_process() -> None:
    first, second = default_holder(), default_holder()
    assert first != second
    assert f":{os.getpid()}:" in first


def test_bad_settings_are_refused(tmp_path: Any) -> None:
    store: Any = object()
    with pytest.raises(ValueError, match="ttl"):
        Leadership(store, ttl=0)
    with pytest.raises(ValueError, match="safety margin"):
        Leadership(store, ttl=3, safety_margin=2.5)


async def test_local_deadline_refuses_after_a_pause_without_any_renewal(
    two_stores: tuple[Store, Store],
) -> None:
    """The wake-up rule by itself: once the monotonic clock passed ttl - margin since the last
    renewal was sent, check() refuses, whatever the loop did or did not do."""
    now = [1000.0]
    lead = Leadership(two_stores[0], ttl=10, safety_margin=2, clock=lambda: now[0])
    assert (await lead.renew_once()) is not None
    assert await lead.check() == 1
    now[0] += 7.9
    assert lead.is_leader and await lead.check() == 1
    now[0] += 0.1  # 8 s = ttl - margin since the renewal was sent: the process "slept" too long
    assert not lead.is_leader and lead.epoch is None and lead.role == "standby"
    with pytest.raises(FencedError, match="does not hold the lease"):
        await lead.check()


async def test_single_daemon_leads_and_releases_on_shutdown(
    two_stores: tuple[Store, Store],
) -> None:
    store, other = two_stores
    elected: list[int] = []
    lost: list[int] = []
    lead = Leadership(store, ttl=LONG_TTL, on_elected=elected.append, on_lost=lost.append)
    async with anyio.create_task_group() as tg:
        await tg.start(lead.run)
        epoch = await lead.check()
        assert (epoch, lead.role, elected) == (1, "leader", [1])
        await store.save_state("p1", {"replicas": 2}, epoch=epoch)
        tg.cancel_scope.cancel()
    assert not lead.is_leader and lost == [1]
    with pytest.raises(FencedError):
        await lead.check()
    # Released, not left to expire: the next daemon starts a new term at once.
    nxt = await other.acquire_lease("default", "next", 30)
    assert nxt is not None and nxt.epoch == 2
    with pytest.raises(FencedError):
        await store.save_state("p1", {"replicas": 9}, epoch=1)


async def test_two_daemons_exactly_one_leader(two_stores: tuple[Store, Store]) -> None:
    a = Leadership(two_stores[0], ttl=LONG_TTL, holder="a")
    b = Leadership(two_stores[1], ttl=LONG_TTL, holder="b")
    async with anyio.create_task_group() as tg:
        await tg.start(a.run)
        await tg.start(b.run)
        assert [a.role, b.role] == ["leader", "standby"]
        with pytest.raises(FencedError):
            await b.check()
        # Several renewal rounds later it is still exactly one, the same one.
        for _ in range(3):
            await b.renew_once()
            await a.renew_once()
            assert (a.is_leader, b.is_leader) == (True, False)
        tg.cancel_scope.cancel()


async def test_stalled_leader_is_replaced_with_a_higher_epoch_and_fenced(
    backend: Backend,
) -> None:
    inner_a, store_b = backend.new_store(), backend.new_store()
    await inner_a.open()
    await store_b.open()
    store_a = StallableStore(inner_a)
    a = Leadership(store_a, ttl=TTL, holder="a")  # type: ignore[arg-type]
    overlap: list[bool] = []
    b = Leadership(store_b, ttl=TTL, holder="b", on_elected=lambda _: overlap.append(a.is_leader))
    try:
        async with anyio.create_task_group() as tg:
            await tg.start(a.run)
            await tg.start(b.run)
            old_epoch = await a.check()
            store_a.stalled = True  # A's renewals hang from now on
            new_epoch = await b.wait_elected()
            assert new_epoch == old_epoch + 1
            assert overlap == [False]  # A had stepped down before B was granted the lease
            await a.wait_lost()
            with pytest.raises(FencedError):
                await a.check()
            # A's late writes, with the epoch it had, are refused by the store itself.
            with pytest.raises(FencedError):
                await inner_a.save_state("p1", {"from": "a"}, epoch=old_epoch)
            with pytest.raises(FencedError):
                await inner_a.begin_intent("p1", "scale", {"from": "a"}, epoch=old_epoch)
            await store_b.save_state("p1", {"from": "b"}, epoch=await b.check())
            assert await inner_a.load_state("p1") == {"from": "b"}
            assert await inner_a.pending_intents() == []
            tg.cancel_scope.cancel()
    finally:
        await inner_a.close()
        await store_b.close()


async def _terminate(application_name: str, admin: asyncpg.Connection | None = None) -> int:
    conn = admin or await asyncpg.connect(PG_ADMIN_DSN)
    try:
        killed = await conn.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = $1",
            application_name,
        )
        return int(killed)
    finally:
        if admin is None:
            await conn.close()


async def test_killed_db_connections_never_give_two_leaders(pg_backend: Backend) -> None:
    name_a = f"autoscaler-test-a-{secrets.token_hex(4)}"
    store_a = PostgresStore(pg_backend.url, application_name=name_a)
    store_b = PostgresStore(pg_backend.url, application_name=f"autoscaler-test-b-{name_a[-8:]}")
    await store_a.open()
    await store_b.open()
    a = Leadership(store_a, ttl=TTL, holder="a")
    b = Leadership(store_b, ttl=TTL, holder="b")
    samples = {"both": 0, "a": 0, "b": 0}

    async def watch() -> None:
        while True:
            if a.is_leader and b.is_leader:
                samples["both"] += 1
            samples["a"] += a.is_leader
            samples["b"] += b.is_leader
            await anyio.sleep(0.005)

    try:
        async with anyio.create_task_group() as tg:
            await tg.start(a.run)
            await tg.start(b.run)
            assert a.is_leader
            tg.start_soon(watch)
            killed = 0
            admin = await asyncpg.connect(PG_ADMIN_DSN)
            try:
                # Cut A's connections as soon as they appear, for two lease periods: its
                # renewals fail (or squeeze through on a fresh connection) at random points.
                with anyio.move_on_after(2.0):
                    while True:
                        killed += await _terminate(name_a, admin)
                        await anyio.sleep(0.01)
            finally:
                await admin.close()
            assert killed >= 1
            # One more lease period without interference: someone leads again.
            with anyio.fail_after(10 * TTL):
                while not (a.is_leader or b.is_leader):
                    await anyio.sleep(0.01)
            tg.cancel_scope.cancel()
        assert samples["both"] == 0
        assert samples["a"] > 0
        # A's store reconnects by itself on the next call.
        assert await store_a.check_writable()
        assert await store_a.load_state("nothing") is None
    finally:
        await store_a.close()
        await store_b.close()


async def test_connection_loss_is_a_store_error_then_recovers(pg_backend: Backend) -> None:
    from autoscaler.store import StoreError

    name = f"autoscaler-test-loss-{secrets.token_hex(4)}"
    store = PostgresStore(pg_backend.url, application_name=name, min_size=1, max_size=1)
    await store.open()
    try:
        await store.save_state("p1", {"n": 1})
        outcomes = []
        for _ in range(3):
            assert await _terminate(name) >= 1
            try:
                await store.save_state("p1", {"n": 2})
                outcomes.append("ok")
            except StoreError as exc:
                assert "postgresql" in str(exc)
                outcomes.append("error")
            assert await store.load_state("p1") in ({"n": 1}, {"n": 2})
        assert set(outcomes) <= {"ok", "error"}
    finally:
        await store.close()


async def test_unreachable_database_is_a_store_error() -> None:
    from autoscaler.store import StoreError
    from tests.services import free_port

    store = PostgresStore(
        f"postgresql://postgres:pw@127.0.0.1:{free_port()}/nothing", connect_timeout=2
    )
    with pytest.raises(StoreError, match="postgresql") as info:
        await store.open()
    assert ":pw@" not in str(info.value)


SIGSTOPPED_LEADER = textwrap.dedent(
    """
    import sys
    import anyio
    from autoscaler.store import FencedError, open_store
    from autoscaler.store.leader import Leadership

    async def main() -> None:
        store = open_store(sys.argv[1])
        await store.open()
        lead = Leadership(store, ttl=float(sys.argv[2]), holder="paused")
        async with anyio.create_task_group() as tg:
            await tg.start(lead.run)
            while True:  # the daemon's action loop: check right before acting
                try:
                    epoch = await lead.check()
                except FencedError:
                    print("refused", flush=True)
                    tg.cancel_scope.cancel()
                    return
                print("acting", epoch, flush=True)
                try:  # a write already past check() when SIGSTOP hit is fenced by the store
                    await store.save_state("p1", {"by": "paused", "epoch": epoch}, epoch=epoch)
                except FencedError:
                    print("write-fenced", flush=True)
                await anyio.sleep(0.05)

    anyio.run(main)
    """
)


async def test_sigstopped_leader_wakes_up_refusing_to_act(pg_backend: Backend) -> None:
    store = pg_backend.new_store()
    await store.open()
    proc = await anyio.open_process(
        [sys.executable, "-c", SIGSTOPPED_LEADER, pg_backend.url, str(TTL)], cwd=REPO
    )
    try:
        assert proc.stdout is not None
        output = BufferedByteReceiveStream(proc.stdout)
        with anyio.fail_after(20):
            while not (await output.receive_until(b"\n", 1 << 16)).startswith(b"acting 1"):
                pass  # log lines before the first action
        proc.send_signal(signal.SIGSTOP)
        standby = Leadership(store, ttl=TTL, holder="standby")
        async with anyio.create_task_group() as tg:
            await tg.start(standby.run)
            epoch = await standby.wait_elected()
            assert epoch == 2
            await store.save_state("p1", {"by": "standby"}, epoch=await standby.check())
            proc.send_signal(signal.SIGCONT)
            with anyio.fail_after(20):
                await proc.wait()
            tg.cancel_scope.cancel()
        rest = b""
        with anyio.fail_after(5):
            try:
                while True:
                    rest += await output.receive()
            except anyio.EndOfStream:
                pass
        # Its next action after waking is a refusal, and the standby's write stands.
        actions = [
            line.strip()
            for line in rest.decode().splitlines()
            if line.startswith(("acting", "write-fenced", "refused"))
        ]
        assert actions[-1] == "refused", actions
        assert all(a in ("acting 1", "write-fenced", "refused") for a in actions)
        assert await store.load_state("p1") == {"by": "standby"}
        assert proc.returncode == 0
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGCONT)
            proc.kill()
            await proc.wait()
        await store.close()
