"""An update stored by this process does not wait for its round trip through the hub: the writer
is acknowledged and this process's subscribers get it while the publish to the other processes is
still in flight, and the publishes keep commit order, several updates in one when they queue."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence

import pytest

from tests.documents import UPDATES, YClient, apply_ws, create_document
from tests.realtime import next_of, run, setup_room


async def test_acks_and_local_subscribers_do_not_wait_for_the_publish(  # type: ignore[no-untyped-def]
    live_server, session_factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    room = await setup_room(live_server, session_factory)
    document_id = await create_document(room)
    hub = live_server.server.config.app.state.syncforge.hub
    publish_many = hub.publish_many
    release = asyncio.Event()
    published: list[list[int]] = []

    async def stalled(channel: str, messages: Sequence[str]) -> bool:
        if channel.startswith("doc:"):
            await release.wait()  # a transport that does not answer (yet)
            published.append([json.loads(message)[0] for message in messages])
        return await publish_many(channel, messages)

    monkeypatch.setattr(hub, "publish_many", stalled)
    async with room.client("ada") as ada, room.client("bob") as bob:
        op = await bob.subscribe(UPDATES, {"id": document_id})
        await run(bob, "{ __typename }")  # answered after the subscription was registered
        writer = YClient()
        acked = [await apply_ws(ada, document_id, writer.append(letter)) for letter in "ABC"]
        assert acked == [1, 2, 3]  # durable, acknowledged; nothing was published yet
        received = [(await next_of(bob, op))["documentUpdates"] for _ in range(3)]
        assert [event["seq"] for event in received] == [1, 2, 3]
        reader = YClient()
        for event in received:
            reader.apply(event["update"])
        assert str(reader) == "ABC"
        assert published == []
        release.set()
        for _ in range(100):
            if sum(map(len, published)) == 3:
                break
            await asyncio.sleep(0.02)
        # In commit order: seq 1 alone, then the two that committed while it was in flight.
        assert published == [[1], [2, 3]]
        # The echoes that came back through the hub are not sent again: next comes seq 4.
        assert await apply_ws(ada, document_id, writer.append("D")) == 4
        assert (await next_of(bob, op))["documentUpdates"]["seq"] == 4
