"""One room's ephemeral events in this process, fanned out to its local subscribers."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from app.realtime.audience import Audience
from app.realtime.hub import Hub
from app.realtime.redis_backend import RESYNC


def channel(room_id: str) -> str:
    return f"events:{room_id}"


@dataclass(slots=True)
class RoomEventData:
    """What travels between processes, and what subscriptions render (RoomEvent's fields)."""

    type: str
    payload: Any
    user_id: str
    sender_connection_id: str | None
    sent_at: float


class RoomEventFeed:
    """One room's events in this process, for its local subscribers."""

    def __init__(self, hub: Hub, room_id: str) -> None:
        self.hub = hub
        self.channel = channel(room_id)
        self.audience = Audience()

    async def start(self) -> None:
        await self.hub.listen(self.channel, self._on_message)

    async def stop(self) -> None:
        await self.hub.unlisten(self.channel, self._on_message)

    def _on_message(self, message: str) -> None:
        if message == RESYNC:
            return  # a transport reconnect: ephemeral events are not replayed
        event = RoomEventData(**json.loads(message))
        self.audience.broadcast(event, exclude=event.sender_connection_id)
