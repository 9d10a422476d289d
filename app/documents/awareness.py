"""Awareness (FR-6.8): who is in a document and where their cursor and selection are, relayed as
y-protocols awareness updates, batched per tick like cursors.

Per document, each process keeps the latest state of every awareness client it heard of. Per
tick it publishes one batch of its own connections' changes for the other processes, and sends
its subscribers one batch of every change since the last tick (coalesced: the latest state per
client). A new subscriber first gets every known state (`full`). When a connection ends, its
clients' states are removed (a "null" state with the next clock), as y-protocols does. States
of a process that died are not removed here: y-protocols clients drop a state that has not been
renewed for 30 s by themselves.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from app.documents import yjs
from app.documents.awareness_codec import AwarenessState, decode, encode
from app.errors import Forbidden
from app.realtime.audience import Audience
from app.realtime.hub import Hub
from app.realtime.redis_backend import RESYNC

MAX_CLIENTS = 1_000  # per document
MAX_STATE_BYTES = 8_192


def channel(document_id: str) -> str:
    return f"awareness:{document_id}"


@dataclass(slots=True)
class AwarenessEvent:
    """What subscriptions render (AwarenessUpdate's fields)."""

    document_id: str
    update: str  # base64 y-protocols awareness update
    full: bool


class AwarenessFeed:
    def __init__(self, hub: Hub, document_id: str, *, process_id: str, tick_s: float) -> None:
        self.hub = hub
        self.document_id = document_id
        self.channel = channel(document_id)
        self.process_id = process_id
        self.tick_s = tick_s
        self.room_id: str | None = None  # set by its first subscriber (for the room watch)
        self.audience = Audience()
        self.states: dict[int, AwarenessState] = {}
        self._owner: dict[int, str] = {}  # client id -> the local connection that sends it
        self._owned: dict[str, set[int]] = {}  # local connection -> its client ids
        self._changed: dict[int, AwarenessState] = {}  # for local subscribers, next tick
        self._outgoing: dict[int, AwarenessState] = {}  # for other processes, next tick
        self._timer: asyncio.TimerHandle | None = None

    async def start(self) -> None:
        await self.hub.listen(self.channel, self._on_message)

    async def stop(self) -> None:
        await self.hub.unlisten(self.channel, self._on_message)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def full_event(self) -> AwarenessEvent | None:
        present = [s for s in self.states.values() if not s.removed]
        if not present:
            return None
        return AwarenessEvent(self.document_id, yjs.encode_base64(encode(present)), True)

    def update(self, connection_id: str, raw: bytes) -> None:
        """A local connection's awareness update (validated here: VALIDATION_ERROR, FORBIDDEN)."""
        states = decode(raw, max_clients=MAX_CLIENTS, max_state_bytes=MAX_STATE_BYTES)
        for entry in states:
            owner = self._owner.get(entry.client_id)
            if owner is not None and owner != connection_id:
                raise Forbidden("that awareness client id belongs to another connection")
        if len(self.states) + len(states) > MAX_CLIENTS and any(
            s.client_id not in self.states for s in states
        ):
            raise Forbidden(f"this document has {MAX_CLIENTS} awareness clients already")
        owned = self._owned.setdefault(connection_id, set())
        for entry in states:
            if self._accept(entry):
                self._outgoing[entry.client_id] = entry
                if entry.removed:
                    owned.discard(entry.client_id)
                    self._owner.pop(entry.client_id, None)
                else:
                    owned.add(entry.client_id)
                    self._owner[entry.client_id] = connection_id
        self._schedule()

    def connection_ended(self, connection_id: str) -> None:
        """Remove the states this connection sent, for everyone."""
        for client_id in self._owned.pop(connection_id, ()):
            self._owner.pop(client_id, None)
            current = self.states.get(client_id)
            if current is not None and not current.removed:
                gone = AwarenessState(client_id, current.clock + 1, "null")
                self._accept(gone)
                self._outgoing[client_id] = gone
        self._schedule()

    def flush(self) -> None:
        """Send what is pending now (a connection ended: its removal must not wait for a tick
        that will not come if this was the feed's last user)."""
        if self._timer is not None:
            self._timer.cancel()
        self._tick()

    def _accept(self, entry: AwarenessState) -> bool:
        """y-protocols' rule: a newer clock wins; at the same clock, only a removal."""
        current = self.states.get(entry.client_id)
        if current is not None and not (
            entry.clock > current.clock
            or (entry.clock == current.clock and entry.removed and not current.removed)
        ):
            return False
        self.states[entry.client_id] = entry
        self._changed[entry.client_id] = entry
        return True

    def _on_message(self, message: str) -> None:
        if message == RESYNC:
            return  # states are renewed by their clients every 15 s
        origin, _, payload = message.partition(" ")
        if origin == self.process_id:
            return
        try:
            raw = yjs.decode_base64(payload, field="update", max_bytes=1 << 24)
            states = decode(raw, max_clients=1 << 20, max_state_bytes=MAX_STATE_BYTES)
        except Exception:
            return
        for entry in states:
            if entry.client_id not in self._owner:
                self._accept(entry)
        self._schedule()

    def _schedule(self) -> None:
        if self._timer is None and (self._changed or self._outgoing):
            self._timer = asyncio.get_running_loop().call_later(self.tick_s, self._tick)

    def _tick(self) -> None:
        self._timer = None
        if self._outgoing and self.hub.shared:
            batch = yjs.encode_base64(encode(list(self._outgoing.values())))
            task = asyncio.ensure_future(self.hub.publish(self.channel, f"{self.process_id} {batch}"))
            task.add_done_callback(lambda t: t.exception())
        self._outgoing = {}
        if self._changed:
            changed, self._changed = list(self._changed.values()), {}
            if self.audience:
                self.audience.broadcast(
                    AwarenessEvent(self.document_id, yjs.encode_base64(encode(changed)), False)
                )
            for entry in changed:
                if entry.removed and self.states.get(entry.client_id) is entry:
                    # Keep the removal's clock only as long as the state would have been kept.
                    del self.states[entry.client_id]
