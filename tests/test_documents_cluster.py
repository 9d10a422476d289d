"""Documents across API processes, and the durability promise under SIGKILL."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from app.settings import Settings
from tests.backends import IS_POSTGRES
from tests.documents import APPLY, UPDATES, YClient, apply_http, create_document, sync_http
from tests.gql import GQL
from tests.processes import REDIS_SERVER, private_redis, processes, spawn
from tests.realtime import next_of, run, setup_room
from tests.test_document_awareness import UPDATE as AWARENESS
from tests.test_document_awareness import WATCH, Peer


@pytest.mark.skipif(not IS_POSTGRES, reason="several processes share PostgreSQL and Redis")
async def test_two_processes_serve_one_document_and_converge(  # type: ignore[no-untyped-def]
    settings: Settings, session_factory, tmp_path: Path
) -> None:
    with processes(settings, settings.redis_url, tmp_path, 2) as (a, b):
        room = await setup_room(a, session_factory)
        doc_id = await create_document(room)
        async with (
            room.client("ada", via=a) as ada,
            room.client("bob", via=b) as bob,
            httpx.AsyncClient(base_url=b.url) as http_b,
        ):
            on = {"a": (ada, await ada.subscribe(UPDATES, {"id": doc_id}))}
            on["b"] = (bob, await bob.subscribe(UPDATES, {"id": doc_id}))
            writers = {"a": room.backend, "b": GQL(http_b, room.backend.headers)}
            docs = {"a": YClient(), "b": YClient()}
            await asyncio.sleep(0.2)  # both subscriptions are registered
            for i in range(20):
                # Alternate writers on the two processes, each acknowledged by its own...
                here, there = ("a", "b") if i % 2 == 0 else ("b", "a")
                seq = await apply_http(writers[here], doc_id, docs[here].append(f"{here}{i} "))
                # ...and a sync on the other process includes what was just acknowledged.
                synced = await sync_http(writers[there], doc_id)
                assert synced["seq"] >= seq
                check = YClient()
                check.apply(synced["update"])
                assert f"{here}{i} " in str(check)
            # Both subscribers get all twenty, in order, half of them from the other process.
            for name, (ws, op) in on.items():
                got = [(await next_of(ws, op, timeout=10))["documentUpdates"] for _ in range(20)]
                assert [u["seq"] for u in got] == list(range(1, 21)), name
                for update in got:
                    docs[name].apply(update["update"])
            assert str(docs["a"]) == str(docs["b"])
            for writer in writers.values():
                final = await sync_http(writer, doc_id)
                check = YClient()
                check.apply(final["update"])
                assert str(check) == str(docs["a"]) and final["seq"] == 20


@pytest.mark.skipif(not IS_POSTGRES, reason="several processes share PostgreSQL and Redis")
async def test_awareness_crosses_processes_and_leaves_with_the_connection(  # type: ignore[no-untyped-def]
    settings: Settings, session_factory, tmp_path: Path
) -> None:
    with processes(settings, settings.redis_url, tmp_path, 2) as (a, b):
        room = await setup_room(a, session_factory)
        doc_id = await create_document(room)
        ada, bob = Peer(), Peer()
        async with room.client("bob", via=b) as bob_ws:
            watch = await bob_ws.subscribe(WATCH, {"id": doc_id})
            await asyncio.sleep(0.2)
            async with room.client("ada", via=a) as ada_ws:
                answer = await run(ada_ws, AWARENESS, id=doc_id, u=ada.set({"user": "ada"}))
                assert answer["data"] == {"updateAwareness": True}
                bob.apply((await next_of(bob_ws, watch, timeout=10))["documentAwareness"]["update"])
                assert bob.others() == {ada.doc.client_id: {"user": "ada"}}
            bob.apply((await next_of(bob_ws, watch, timeout=10))["documentAwareness"]["update"])
            assert bob.others() == {}


async def test_every_acknowledged_update_survives_a_sigkill_mid_stream(  # type: ignore[no-untyped-def]
    settings: Settings, session_factory, tmp_path: Path
) -> None:
    """A client streams 100 updates a second, pipelined; the API process is SIGKILLed and
    started again; every update it had acknowledged is in the document."""
    redis_url = settings.redis_url
    server = spawn(settings, redis_url, tmp_path, SYNCFORGE_DOCUMENT_COMPACT_DEBOUNCE_S="0.3")
    try:
        room = await setup_room(server, session_factory)
        doc_id = await create_document(room)
        writer = YClient()
        sent: dict[str, str] = {}  # operation id -> the token its update appends
        acked: list[str] = []
        killed = False
        async with room.client("ada", via=server) as ada:
            try:
                for i in range(1000):
                    token = f"<{i}>"
                    op = await ada.subscribe(APPLY, {"id": doc_id, "update": writer.append(token)})
                    sent[op] = token
                    if i == 150:
                        os.kill(server.popen.pid, signal.SIGKILL)  # mid-stream, acks in flight
                        killed = True
                    deadline = asyncio.get_running_loop().time() + 0.01
                    while (remaining := deadline - asyncio.get_running_loop().time()) > 0:
                        try:
                            message = json.loads(await asyncio.wait_for(ada.connection.recv(), remaining))
                        except TimeoutError:
                            break
                        if message.get("type") == "next" and message["id"] in sent:
                            assert not message["payload"].get("errors"), message
                            acked.append(sent[message["id"]])
            except (ConnectionClosed, OSError):
                pass
        assert killed and len(acked) > 50  # the stream was live when the process died
        server.popen.wait(timeout=10)
    finally:
        if server.popen.poll() is None:
            server.popen.kill()
    restarted = spawn(settings, redis_url, tmp_path)
    try:
        async with httpx.AsyncClient(base_url=restarted.url) as http:
            synced = await sync_http(GQL(http, room.backend.headers), doc_id)
        reader = YClient()
        reader.apply(synced["update"])
        text = str(reader)
        lost = [token for token in acked if token not in text]
        assert lost == [], f"{len(lost)} acknowledged updates lost"
        assert synced["seq"] >= len(acked)
    finally:
        restarted.popen.terminate()
        restarted.popen.wait(timeout=20)


@pytest.mark.skipif(not IS_POSTGRES, reason="several processes share PostgreSQL and Redis")
@pytest.mark.skipif(not REDIS_SERVER.exists(), reason="needs redis-server")
async def test_updates_acknowledged_while_redis_is_down_reach_subscribers_when_it_returns(  # type: ignore[no-untyped-def]
    settings: Settings, session_factory, tmp_path: Path
) -> None:
    async with private_redis() as redis:
        with processes(settings, redis.url, tmp_path, 2) as (a, b):
            room = await setup_room(a, session_factory)
            doc_id = await create_document(room)
            writer = YClient()
            async with room.client("bob", via=b) as bob:
                watch = await bob.subscribe(UPDATES, {"id": doc_id})
                await asyncio.sleep(0.2)
                await apply_http(room.backend, doc_id, writer.append("before "))
                assert (await next_of(bob, watch, timeout=10))["documentUpdates"]["seq"] == 1

                redis.stop()
                # Durable and acknowledged by process a, but nothing can carry them to b now.
                for word in ("during ", "the ", "outage"):
                    await apply_http(room.backend, doc_id, writer.append(word))
                await redis.start()

                # b's copy reads what it missed from the log after the reconnect: in order, no gap.
                got = [(await next_of(bob, watch, timeout=30))["documentUpdates"] for _ in range(3)]
                assert [u["seq"] for u in got] == [2, 3, 4]
                reader = YClient()
                async with httpx.AsyncClient(base_url=b.url) as http_b:
                    reader.apply((await sync_http(GQL(http_b, room.backend.headers), doc_id))["update"])
                assert str(reader) == "before during the outage"
