"""The `rabbitmq` source against the machine's RabbitMQ (5672, guest/guest).

The management plugin is not enabled on this machine, so `include_unacked` is tested against a
small local fake of the management endpoint (`GET /api/queues/{vhost}/{queue}` JSON, served over
real HTTP); the ready count always comes from the real broker.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator

import aio_pika
import pytest

from autoscaler.policy.model import RabbitMQSource, SecretRef
from autoscaler.sources.base import PermanentSourceError, TemporarySourceError
from autoscaler.sources.registry import build_source
from tests.services import free_port, require_tcp
from tests.sources.httpserver import Reply, serving
from tests.sources.spellings import NOT_WRITTEN, PADDED, refused

pytestmark = pytest.mark.anyio
URL = "amqp://guest:guest@127.0.0.1:5672/"


@pytest.fixture
async def channel() -> AsyncIterator[aio_pika.abc.AbstractChannel]:
    require_tcp("RabbitMQ", 5672)
    connection = await aio_pika.connect(URL)
    ch = await connection.channel()
    queues: list[str] = []
    ch.test_queues = queues  # type: ignore[attr-defined]
    yield ch
    cleanup = await connection.channel()
    for name in queues:
        await cleanup.queue_delete(name)
    await connection.close()


async def new_queue(ch, count: int = 0) -> str:
    name = f"autoscaler-test-{uuid.uuid4().hex[:10]}"
    ch.test_queues.append(name)
    await ch.declare_queue(name)
    for i in range(count):
        await ch.default_exchange.publish(aio_pika.Message(str(i).encode()), routing_key=name)
    return name


async def wait_ready(src, expected: float) -> float:
    """Published messages become countable a moment later; poll the source itself."""
    import anyio

    value = -1.0
    for _ in range(100):
        value = await src.read()
        if value == expected:
            return value
        await anyio.sleep(0.02)
    return value


async def test_ready_messages(channel) -> None:
    queue = await new_queue(channel, 6)
    src = build_source(RabbitMQSource(url=URL, queue=queue), name="jobs")
    assert await wait_ready(src, 6.0) == 6.0
    await (await channel.get_queue(queue)).purge()
    assert await src.read() == 0.0  # same connection and channel
    await src.aclose()


async def test_unacked_from_the_management_api(channel) -> None:
    queue = await new_queue(channel, 5)
    q = await channel.get_queue(queue)
    held = [await q.get(no_ack=False) for _ in range(2)]  # delivered, not acknowledged
    management = {
        "name": queue,
        "vhost": "/",
        "messages": 5,
        "messages_ready": 3,
        "messages_unacknowledged": 2,
    }
    with serving() as srv:
        srv.routes[f"/api/queues/%2F/{queue}"] = Reply(
            json.dumps(management), content_type="application/json"
        )
        src = build_source(
            RabbitMQSource(url=URL, queue=queue, include_unacked=True, management_url=srv.url("")),
            name="jobs",
        )
        assert await wait_ready(src, 5.0) == 5.0  # 3 ready (AMQP) + 2 unacked (management)
        assert srv.requests[-1].headers["authorization"].startswith("Basic ")
        srv.routes[f"/api/queues/%2F/{queue}"] = Reply(
            json.dumps({"name": queue}), content_type="application/json"
        )
        with pytest.raises(TemporarySourceError, match="no messages_unacknowledged"):
            await src.read()
        srv.routes[f"/api/queues/%2F/{queue}"] = Reply("{}", status=404)
        with pytest.raises(PermanentSourceError, match="404"):
            await src.read()
        await src.aclose()
    for message in held:
        await message.ack()
    with pytest.raises(PermanentSourceError, match="management_url"):
        build_source(RabbitMQSource(url=URL, queue=queue, include_unacked=True), name="jobs")


@pytest.mark.parametrize("text", NOT_WRITTEN + PADDED + ("2",))
async def test_an_unacked_count_written_as_text_is_a_failed_read(channel, text: str) -> None:
    # The management API writes counts as JSON integers: a string is refused whatever it spells.
    queue = await new_queue(channel)
    management = json.dumps({"name": queue, "messages_unacknowledged": text})
    with serving() as srv:
        srv.routes[f"/api/queues/%2F/{queue}"] = Reply(management)
        spec = RabbitMQSource(
            url=URL, queue=queue, include_unacked=True, management_url=srv.url("")
        )
        error = await refused(build_source(spec, name="jobs"))
    assert str(error) == f"jobs: management API messages_unacknowledged is {text!r}"


async def test_missing_queue_then_created(channel) -> None:
    name = f"autoscaler-test-{uuid.uuid4().hex[:10]}"
    src = build_source(RabbitMQSource(url=URL, queue=name), name="jobs")
    with pytest.raises(PermanentSourceError, match=f"queue '{name}' does not exist"):
        await src.read()
    channel.test_queues.append(name)
    await channel.declare_queue(name)
    assert await src.read() == 0.0  # the channel RabbitMQ closed is reopened
    await src.aclose()


async def test_wrong_password_from_secret(channel, monkeypatch) -> None:
    queue = await new_queue(channel)
    monkeypatch.setenv("AUTOSCALER_TEST_AMQP_PW", "not-the-password")
    src = build_source(
        RabbitMQSource(
            url="amqp://guest@127.0.0.1:5672/",
            queue=queue,
            password=SecretRef(env="AUTOSCALER_TEST_AMQP_PW"),
        ),
        name="jobs",
    )
    with pytest.raises(PermanentSourceError, match="credentials refused") as info:
        await src.read()
    assert "not-the-password" not in str(info.value)
    monkeypatch.setenv("AUTOSCALER_TEST_AMQP_PW", "guest")
    assert await src.read() == 0.0
    await src.aclose()


async def test_server_down() -> None:
    port = free_port()
    src = build_source(
        RabbitMQSource(url=f"amqp://guest:guest@127.0.0.1:{port}/", queue="q", timeout=2),
        name="jobs",
    )
    with pytest.raises(TemporarySourceError, match="cannot connect") as info:
        await src.read()
    assert "guest:guest" not in str(info.value)
    await src.aclose()


async def test_slow_dropped_down_and_back_through_a_proxy(channel) -> None:
    """A TCP proxy in front of the real broker: stall it, cut it, take it away, bring it back.
    After each failure the next read gives the queue's current depth (no stale answer)."""
    from tests.sources.tcpproxy import TcpProxy

    queue = await new_queue(channel)
    proxy = TcpProxy(5672).start()
    src = build_source(
        RabbitMQSource(url=f"amqp://guest:guest@127.0.0.1:{proxy.port}/", queue=queue, timeout=0.5),
        name="jobs",
    )
    try:
        assert await src.read() == 0.0
        proxy.stall()
        await channel.default_exchange.publish(aio_pika.Message(b"1"), routing_key=queue)
        with pytest.raises(TemporarySourceError, match="timeout"):
            await src.read()
        proxy.resume()
        assert await wait_ready(src, 1.0) == 1.0
        proxy.drop_all()
        await channel.default_exchange.publish(aio_pika.Message(b"2"), routing_key=queue)
        # The cut is either met by this read (a temporary error) or noticed before it (the
        # read reconnects): never a wrong number.
        try:
            first = await src.read()
        except TemporarySourceError as exc:
            assert "connection to RabbitMQ lost" in str(exc)
        else:
            assert first in (1.0, 2.0)
        assert await wait_ready(src, 2.0) == 2.0
        proxy.stop()
        with pytest.raises(TemporarySourceError):
            await src.read()
        with pytest.raises(TemporarySourceError, match="cannot connect"):
            await src.read()
        proxy.start()
        assert await src.read() == 2.0
    finally:
        proxy.stop()
        await src.aclose()
