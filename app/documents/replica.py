"""One document in this process: a pycrdt Doc holding every acknowledged update, applied in
sequence order, and the local subscribers of its updates.

Every acknowledged update reaches every process once, through the hub, with its sequence number
from the durable log. Updates are applied and sent to subscribers strictly in that order; one
that arrives ahead of a gap waits for it, and a gap that does not fill by itself (a message lost
in a Redis restart, a publish overtaken by another process's) is filled from the log. So a
subscriber that saw seq n has seen every update before it, and can resume from n.

An update stored by this process does not wait for its round trip through the hub (a Redis
round trip per update, serialized behind each writer's next update): once committed it is handed
to `committed`, which sends it to the local subscribers a millisecond later (after the writer's
acknowledgement), and publishes it to the other processes in the background, in order, in one
pipelined publish for whatever committed meanwhile. Its echo through the hub is then dropped.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections import deque
from dataclasses import dataclass

import pycrdt
from pycrdt import Doc
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.documents import service, yjs
from app.errors import DocumentUnavailable
from app.realtime.audience import Audience
from app.realtime.hub import Hub
from app.realtime.redis_backend import RESYNC
from app.realtime.stream import Stream

log = logging.getLogger(__name__)

GAP_WAIT_S = 0.2  # how long an update ahead of a gap waits before the gap is read from the log
MAX_WAITING = 10_000  # updates held ahead of a gap, at most; past that the log is read at once
PUBLISH_WAIT_S = 5.0  # at unload, how long updates committed here may take to be published
# Updates committed here reach the local subscribers this long after their commit, together:
# first the writer is acknowledged and its next update goes to the database, then the fan-out
# (200 receivers: ~4 ms of CPU) runs while that commit is in flight instead of before it.
FLUSH_DELAY_S = 0.001


def channel(document_id: str) -> str:
    return f"doc:{document_id}"


@dataclass(slots=True)
class DocumentUpdateEvent:
    """What subscriptions render (DocumentUpdate's fields) and what travels between processes."""

    document_id: str
    seq: int
    update: str  # base64
    origin: str | None
    full: bool = False
    sender: str | None = None  # the connection that sent it: its own stream is skipped


def encode_event(event: DocumentUpdateEvent) -> str:
    return json.dumps([event.seq, event.update, event.origin, event.sender], separators=(",", ":"))


class DocumentReplica:
    def __init__(
        self,
        hub: Hub,
        session_factory: async_sessionmaker[AsyncSession],
        document_id: str,
        *,
        replay_updates: int,
    ) -> None:
        self.hub = hub
        self.id = document_id
        self.uuid = uuid.UUID(document_id)
        self.channel = channel(document_id)
        self._session_factory = session_factory
        self.doc = Doc()
        self.seq = 0  # every update up to here is applied
        self.loaded = False
        self.room_id: str | None = None
        self.recent: deque[DocumentUpdateEvent] = deque(maxlen=replay_updates)
        self.audience = Audience()
        self._full: tuple[Doc, DocumentUpdateEvent] | None = None  # see full_event
        # Updates ahead of a gap, by seq; and updates applied whose dependencies are still
        # missing (pycrdt leaves those out of encoded state: they are added back by hand).
        self._waiting: dict[int, DocumentUpdateEvent] = {}
        self._unintegrated: list[bytes] = []
        self._filling: asyncio.Task[None] | None = None
        self._fill_timer: asyncio.TimerHandle | None = None
        self._volatile = 0  # see volatile_seq
        # Seqs of updates this process validated (applied) itself: not applied again on return.
        self._applied_here: set[int] = set()
        # Bumped whenever `doc` is rebuilt: an update validated in an earlier doc is not in this
        # one, so its echo must be applied (see applied_here).
        self.generation = 0
        # One rebuild or gap fill at a time: each reads the log and then replaces state.
        self._rebuilding = asyncio.Lock()
        # Updates committed here: the next flush sends them to the local subscribers, and the
        # publisher to the other processes (see committed).
        self._flush_handle: asyncio.TimerHandle | None = None
        self._outgoing: list[str] = []
        self._publisher: asyncio.Task[None] | None = None

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        # Listen first: what is published while the state loads waits in _waiting.
        await self.hub.listen(self.channel, self._on_message)
        try:
            await self._load()
        except BaseException:
            await self.hub.unlisten(self.channel, self._on_message)
            raise

    async def stop(self) -> None:
        """Unload; live subscriptions (if any) end. What was committed here is published first."""
        if self._publisher is not None:
            await asyncio.wait([self._publisher], timeout=PUBLISH_WAIT_S)
        await self.hub.unlisten(self.channel, self._on_message)
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        if self._fill_timer is not None:
            self._fill_timer.cancel()
        if self._filling is not None:
            self._filling.cancel()
        for stream in list(self.audience.streams()):
            stream.finish()

    def fail_streams(self, error: Exception) -> None:
        """End every live subscription with `error` (the document is gone)."""
        for stream in list(self.audience.streams()):
            stream.fail(error)

    async def _load(self) -> None:
        async with self._rebuilding:
            await self._rebuild()
        self.loaded = True
        self._drain()

    # --- reading --------------------------------------------------------------------------

    def update_for(self, state_vector: bytes | None) -> bytes:
        """What a client with `state_vector` is missing (everything, without one)."""
        update = self.doc.get_update(state_vector)
        if self._unintegrated:
            update = pycrdt.merge_updates(update, *self._unintegrated)
        return update

    def state_vector(self) -> bytes:
        return self.doc.get_state()

    def full_event(self) -> DocumentUpdateEvent:
        """The whole state as one update, encoded once per seq and doc (a rebuild makes a new
        Doc): streams that lag, or replay from long ago, at the same seq share it."""
        cached = self._full
        if cached is not None and cached[0] is self.doc and cached[1].seq == self.seq:
            return cached[1]
        event = DocumentUpdateEvent(self.id, self.seq, yjs.encode_base64(self.update_for(None)), None, True)
        self._full = (self.doc, event)
        return event

    def replay(self, stream: Stream, since: int) -> None:
        """Send `stream` what came after `since`: from memory if it is recent, else the whole
        state as one update (`full`)."""
        if since >= self.seq:
            return
        oldest = self.recent[0].seq if self.recent else self.seq + 1
        renderer = stream.renderer
        if oldest <= since + 1:
            for event in self.recent:
                if event.seq > since:
                    stream.send(renderer.render(event))
        else:
            stream.send(renderer.render(self.full_event()))

    async def catch_up(self, upto: int) -> None:
        """Apply every update up to `upto` (known durable), reading the log for what has not
        arrived through the hub yet."""
        self._drain()  # what was committed here and waits for the next flush
        if self.seq < upto:
            await self._fill(upto)

    # --- writing --------------------------------------------------------------------------

    def validate(self, update: bytes) -> int:
        """Apply a client's update before it is stored: a malformed one raises
        VALIDATION_ERROR and nothing is stored. Answers the generation of the doc it was applied
        to, for applied_here. (Applying it again when it comes back through the hub with its seq
        changes nothing.)"""
        yjs.apply(self.doc, update)
        self._track_integration(update)
        return self.generation

    def applied_here(self, seq: int, generation: int) -> None:
        """The update stored as `seq` was applied by validate() to the doc of `generation`: its
        echo need not be applied again, unless the doc was rebuilt since (then it is not in it)."""
        if seq > self.seq and generation == self.generation:
            self._applied_here.add(seq)

    def committed(self, event: DocumentUpdateEvent) -> None:
        """`event` was stored under its seq by this process (or numbered from memory, with
        durability "none"). It goes to the local subscribers FLUSH_DELAY_S later (with whatever
        else committed meanwhile, in seq order), and to the other processes through the hub;
        neither is awaited, so the acknowledgement and the writer's next update wait neither on
        the fan-out nor on a round trip through Redis."""
        if event.seq > self.seq:
            self._waiting[event.seq] = event
        if self._flush_handle is None:
            self._flush_handle = asyncio.get_running_loop().call_later(FLUSH_DELAY_S, self._flush)
        # Published in memory too: a copy of the document loaded meanwhile in this process (after
        # this one was evicted) learns of it as the other processes do.
        self._outgoing.append(encode_event(event))
        if self._publisher is None:
            self._publisher = asyncio.ensure_future(self._publish())

    def _flush(self) -> None:
        self._flush_handle = None
        self._drain()

    async def _publish(self) -> None:
        """Publish what was committed here, in commit order: one pipelined publish for all that
        committed while the previous one was in flight. A refused publish (Redis down) is
        dropped: the other processes are told to resync when the transport is back."""
        try:
            while self._outgoing:
                batch, self._outgoing = self._outgoing, []
                await self.hub.publish_many(self.channel, batch)
        finally:
            self._publisher = None

    def volatile_seq(self) -> int:
        """A sequence number handed out from memory (document_durability="none": one process)."""
        self._volatile = max(self._volatile, self.seq) + 1
        return self._volatile

    async def reload(self, generation: int | None = None) -> None:
        """After a failed append: rebuild the doc from the database, without the update that was
        applied but never stored, and without any acknowledged one going missing (see _rebuild).
        Meanwhile hub messages wait, and updates validated in the old doc get a stale
        generation, so their echoes are applied to the new one. `generation`: that of the doc the
        unstored update went into; if it was rebuilt since, it is gone already (a failed group
        commit of N appends rebuilds once, not N times)."""
        async with self._rebuilding:
            if generation is not None and generation != self.generation:
                return
            self.loaded = False
            try:
                await self._rebuild()
            finally:
                self.loaded = True
                self._drain()

    async def _rebuild(self) -> None:
        """Replace the doc with the stored state. Every update this replica integrated was
        published after its commit, so the read (which starts later) holds it; stored updates
        it has not integrated yet go out to subscribers as a gap fill would."""
        integrated_seq = self.seq
        async with self._session_factory() as session:
            stored = await service.read_stored(session, self.uuid)
        doc = Doc()
        try:
            _apply_stored(doc, stored)
        except Exception as error:
            log.error("document %s does not load: %s", self.id, error)
            raise DocumentUnavailable(
                "this document's stored state cannot be loaded; it is not served until repaired"
            ) from None
        for event in self.recent:
            if event.seq > stored.seq:  # cannot happen with a durable log; never drop one anyway
                log.error("document %s: seq %d integrated but not in the log", self.id, event.seq)
                yjs.apply(doc, yjs.decode_base64(event.update, field="update", max_bytes=1 << 30))
        self.doc = doc
        self.generation += 1
        self._applied_here.clear()
        self._unintegrated = []
        self.room_id = str(stored.room_id)
        for row in stored.log:
            self._track_integration(row.update)
        events = [
            DocumentUpdateEvent(self.id, r.seq, yjs.encode_base64(r.update), r.origin) for r in stored.log
        ]
        if stored.compacted_seq > integrated_seq:
            # What this replica lacks was compacted: subscribers get the whole document instead.
            self.seq = max(stored.seq, integrated_seq)
            self.recent.clear()
            self.recent.extend(events)
            if self.audience:
                self.audience.broadcast(self.full_event())
            return
        for event in events:
            if event.seq > integrated_seq:
                self._waiting.pop(event.seq, None)
                self._announce(event)

    # --- the stream of updates ------------------------------------------------------------

    def _on_message(self, message: str) -> None:
        if message == RESYNC:
            # The transport reconnected: messages may be lost. The log has them all.
            self._schedule_fill(at_once=True)
            return
        seq, update, origin, sender = json.loads(message)
        if seq <= self.seq:
            return
        self._waiting[seq] = DocumentUpdateEvent(self.id, seq, update, origin, False, sender)
        if self.loaded:
            self._drain()

    def _drain(self) -> None:
        if not self.loaded:
            return  # a rebuild is under way: it drains when done
        while self._waiting:
            event = self._waiting.pop(self.seq + 1, None)
            if event is None:
                for seq in [s for s in self._waiting if s <= self.seq]:
                    del self._waiting[seq]
                break
            self._integrate(event)
        if self._waiting:
            self._schedule_fill(at_once=len(self._waiting) > MAX_WAITING)

    def _integrate(self, event: DocumentUpdateEvent) -> None:
        if event.seq in self._applied_here:
            self._applied_here.discard(event.seq)
            data = None
        else:
            data = yjs.decode_base64(event.update, field="update", max_bytes=1 << 30)
            try:
                yjs.apply(self.doc, data)
            except Exception:
                # It was validated before it was stored; this process's Doc must be wrong.
                log.exception("document %s: stored update %d does not apply here", self.id, event.seq)
        if data is not None or self._unintegrated:
            self._track_integration(
                data
                if data is not None
                else yjs.decode_base64(event.update, field="update", max_bytes=1 << 30)
            )
        self._announce(event)

    def _announce(self, event: DocumentUpdateEvent) -> None:
        """`event` is applied: it is the replica's position, replayable and sent to subscribers."""
        self._full = None  # (a whole document's worth of text: not kept once outdated)
        self.seq = event.seq
        self.recent.append(event)
        self.audience.broadcast(event, exclude=event.sender)

    def _track_integration(self, data: bytes) -> None:
        if not self._unintegrated and yjs.integrated(self.doc.get_state(), data):
            return
        state = self.doc.get_state()
        self._unintegrated = [u for u in [*self._unintegrated, data] if not yjs.integrated(state, u)]

    # --- filling gaps from the log ----------------------------------------------------------

    def _schedule_fill(self, *, at_once: bool) -> None:
        if self._filling is not None:
            return
        if at_once:
            if self._fill_timer is not None:
                self._fill_timer.cancel()
                self._fill_timer = None
            self._filling = asyncio.ensure_future(self._fill(None))
            self._filling.add_done_callback(self._filled)
        elif self._fill_timer is None:
            self._fill_timer = asyncio.get_running_loop().call_later(GAP_WAIT_S, self._fill_now)

    def _fill_now(self) -> None:
        self._fill_timer = None
        if self._waiting:
            self._schedule_fill(at_once=True)

    def _filled(self, task: asyncio.Task[None]) -> None:
        self._filling = None
        if not task.cancelled() and task.exception() is not None:
            log.warning("document %s: filling a gap failed", self.id, exc_info=task.exception())
            self._schedule_fill(at_once=False)  # try again shortly
        elif self._waiting:
            self._drain()

    async def _fill(self, upto: int | None) -> None:
        async with self._rebuilding:
            after = self.seq
            async with self._session_factory() as session:
                if upto is None:
                    upto = await service.last_seq(session, self.uuid)
                rows = await service.read_log(session, self.uuid, after=after, upto=upto)
            if (rows and rows[0].seq == after + 1) or (not rows and after >= upto):
                for row in rows:
                    if row.seq == self.seq + 1:  # (the hub may have brought some meanwhile)
                        self._waiting.pop(row.seq, None)
                        self._integrate(
                            DocumentUpdateEvent(self.id, row.seq, yjs.encode_base64(row.update), row.origin)
                        )
            else:
                await self._resync_from_state()
        self._drain()

    async def _resync_from_state(self) -> None:
        """The missing rows were compacted away: take the stored state, and give every
        subscriber the whole document (it cannot be told the individual updates)."""
        async with self._session_factory() as session:
            stored = await service.read_stored(session, self.uuid)
        _apply_stored(self.doc, stored)
        if stored.seq > self.seq:
            self.seq = stored.seq
            self.recent.clear()
            full = self.full_event()
            self.audience.broadcast(full)


def _apply_stored(doc: Doc, stored: service.StoredState) -> None:
    if stored.state is not None:
        yjs.apply(doc, stored.state, field="state")
    for row in stored.log:
        yjs.apply(doc, row.update, field="log")
