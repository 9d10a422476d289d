"""The Yjs sync protocol's steps over GraphQL: sync (state vector in, missing update out),
durable updates, and the stream of everyone else's updates with replay on reconnect.

An update is acknowledged only once it is durable: validated by applying it to this process's
replica, appended to the log and committed; then answered with its seq, while the replica sends it
to this process's subscribers and publishes it to the others (see DocumentReplica.committed):
neither waits on the other, nor on a round trip through Redis.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from app.auth.policy import Action
from app.auth.principal import Developer
from app.documents import service, yjs
from app.documents.access import DocumentTicket, document_ticket
from app.documents.replica import DocumentReplica, DocumentUpdateEvent
from app.documents.replicas import Replicas
from app.errors import DocumentUnavailable, Forbidden, NotFound
from app.graphql.context import Context
from app.realtime.single_flight import join, spawn
from app.realtime.stream import Stream
from app.rooms.models import RoomStatus
from app.state import AppState

MAX_ORIGIN_CHARS = 100

log = logging.getLogger(__name__)


@dataclass(slots=True)
class UpdateAck:
    document_id: str
    seq: int


@dataclass(slots=True)
class SyncAnswer:
    document_id: str
    update: str
    state_vector: str
    seq: int


async def sync_document(context: Context, document_id: uuid.UUID, state_vector: str | None) -> SyncAnswer:
    """Sync step 2: what a client with `state_vector` lacks, including every update that was
    acknowledged anywhere before this call (the replica catches up with the log first)."""
    ticket = await document_ticket(context, document_id, Action.DOCUMENTS_READ)
    settings = context.state.settings
    vector = None
    if state_vector:
        raw = yjs.decode_base64(
            state_vector, field="stateVector", max_bytes=settings.document_update_max_bytes
        )
        vector = yjs.state_vector(raw)
    async with _caught_up(context, ticket) as replica:
        return SyncAnswer(
            document_id=ticket.document_id,
            update=yjs.encode_base64(replica.update_for(vector)),
            state_vector=yjs.encode_base64(replica.state_vector()),
            seq=replica.seq,
        )


async def apply_update(
    context: Context, document_id: uuid.UUID, update: str, origin: str | None
) -> UpdateAck:
    ticket = await document_ticket(context, document_id, Action.DOCUMENTS_WRITE)
    context.spend("document updates")
    max_bytes = context.state.settings.document_update_max_bytes
    data = yjs.decode_base64(update, field="update", max_bytes=max_bytes)
    return await append(context, ticket, data, update, origin)


async def append(
    context: Context, ticket: DocumentTicket, data: bytes, encoded: str, origin: str | None
) -> UpdateAck:
    """Validate, store, publish, acknowledge: the one way an update enters a document."""
    state = context.state
    # The ticket may be memoized on this connection: the room's status is read each time (from
    # the per-process cache, which every process empties when the room changes).
    room = await state.rooms.get(ticket.room_id)
    if room is None or room.status != RoomStatus.ACTIVE:
        raise Forbidden("this room is not active", reason="ARCHIVED") if room else NotFound("document")
    if origin is not None and len(origin) > MAX_ORIGIN_CHARS:
        origin = origin[:MAX_ORIGIN_CHARS]
    principal = context.principal
    sender = context.connection_id if context.websocket_or_none is not None else None
    modified_by = principal.user_id if isinstance(principal, Developer) else None
    # In a task of its own: a caller cancelled meanwhile (its socket closed) never leaves an
    # update stored but unpublished, or applied to the replica but neither stored nor dropped.
    return await join(spawn(lambda: _append(state, ticket, data, encoded, origin, sender, modified_by)))


async def _append(
    state: AppState,
    ticket: DocumentTicket,
    data: bytes,
    encoded: str,
    origin: str | None,
    sender: str | None,
    modified_by: uuid.UUID | None,
) -> UpdateAck:
    settings = state.settings
    document_id = uuid.UUID(ticket.document_id)
    async with state.documents.use(ticket.document_id) as replica:
        generation = replica.validate(data)  # malformed: VALIDATION_ERROR, and nothing was stored
        durable = settings.document_durability != "none"  # "none": the benchmark's baseline only
        if not durable:
            seq = replica.volatile_seq()
        else:
            try:
                seq = await state.document_log.append(
                    document_id,
                    data,
                    origin=origin,
                    modified_by_id=modified_by,
                    max_document_bytes=settings.document_max_bytes,
                )
            except Exception:
                await _drop_unstored(state.documents, replica, generation)
                raise
        replica.applied_here(seq, generation)
        replica.committed(DocumentUpdateEvent(ticket.document_id, seq, encoded, origin, False, sender))
    if durable:
        state.compactor.touch(ticket.document_id)
    return UpdateAck(document_id=ticket.document_id, seq=seq)


async def _drop_unstored(replicas: Replicas, replica: DocumentReplica, generation: int) -> None:
    """The replica holds an update that was never stored: rebuild it from the database. If even
    that fails (the database is down), unload it, so nothing serves it: its subscribers are told
    to resubscribe (with `since`) and the next user loads it afresh."""
    try:
        await replica.reload(generation)
    except Exception:
        log.warning(
            "document %s: reloading after a failed append failed; unloaded", replica.id, exc_info=True
        )
        if replicas.get(replica.id) is replica:  # (not a fresh copy loaded since)
            unavailable = DocumentUnavailable("this document is reloading: resubscribe with `since`")
            replicas.evict(replica.id, unavailable)


async def current_state(context: Context, ticket: DocumentTicket) -> tuple[bytes, int]:
    """Every acknowledged update as one Yjs update, and the seq it is as of."""
    async with _caught_up(context, ticket) as replica:
        return replica.update_for(None), replica.seq


@asynccontextmanager
async def _caught_up(context: Context, ticket: DocumentTicket) -> AsyncIterator[DocumentReplica]:
    """The document's replica, holding every update acknowledged anywhere before this call
    (what the hub has not brought yet is read from the log)."""
    async with context.state.documents.use(ticket.document_id) as replica:
        async with context.session() as session:
            durable = await service.last_seq(session, uuid.UUID(ticket.document_id))
        await replica.catch_up(durable)
        yield replica


async def authorize_document_updates(context: Context, arguments: dict[str, Any]) -> DocumentTicket:
    return await document_ticket(context, arguments["documentId"], Action.DOCUMENTS_READ)


async def open_document_updates(context: Context, arguments: dict[str, Any], stream: Stream) -> None:
    ticket = await authorize_document_updates(context, arguments)
    replicas = context.state.documents
    replica = await replicas.acquire(ticket.document_id)
    stream.key = context.connection_id  # its own updates are not sent back
    stream.view = replica
    stream.on_resync = _send_whole_document
    stream.on_end = _Release(replicas, replica, stream).run
    since = arguments.get("since")
    if since is not None:
        replica.replay(stream, since)
    # No await since the replay: nothing can come between it and the live updates.
    replica.audience.add(stream)


def _send_whole_document(stream: Stream) -> None:
    """Frames were dropped for a slow socket: the whole document (one update) makes up for them."""
    replica: DocumentReplica = stream.view
    stream.send(stream.renderer.render(replica.full_event()))


class _Release:
    __slots__ = ("replica", "replicas", "stream")

    def __init__(self, replicas: Replicas, replica: DocumentReplica, stream: Stream) -> None:
        self.replicas = replicas
        self.replica = replica
        self.stream = stream

    async def run(self, dropped: bool) -> None:
        self.replica.audience.remove(self.stream)
        await self.replicas.release(self.replica.id, self.replica)
