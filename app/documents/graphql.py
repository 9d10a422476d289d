"""GraphQL types, queries, mutations and subscriptions of collaborative documents (FR-6)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator
from datetime import datetime
from typing import Annotated

import strawberry
from strawberry.scalars import JSON

from app.auth.policy import Action
from app.auth.principal import Developer
from app.db import UnitOfWork
from app.documents import service, sync, yjs
from app.documents.content import RootName, SharedTypeKind, rendered
from app.documents.models import Document
from app.documents.models import DocumentType as DocumentKind
from app.errors import NotFound, ValidationFailed
from app.graphql.context import Context, Info
from app.graphql.pagination import Connection
from app.graphql.ws.fast import FastMutation, FastSubscription, unserved
from app.realtime.room_access import load_room

DocumentKindEnum = strawberry.enum(DocumentKind, name="DocumentKind")
ONLY_OVER_WEBSOCKET = "this subscription runs over the WebSocket connection (graphql-transport-ws)"


@strawberry.type(name="Document")
class DocumentType:
    id: uuid.UUID
    room_id: uuid.UUID
    name: str
    slug: str | None
    type: DocumentKindEnum
    metadata: JSON
    version: int = strawberry.field(description="Bumped each time the update log is compacted.")
    seq: int = strawberry.field(description="The sequence number of the last acknowledged update.")
    size_bytes: int = strawberry.field(description="Stored state plus the updates not yet compacted.")
    last_modified_at: datetime | None
    deleted_at: datetime | None = strawberry.field(description="In the trash since (restorable).")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_model(cls, document: Document) -> DocumentType:
        return cls(
            id=document.id,
            room_id=document.room_id,
            name=document.name,
            slug=document.slug,
            type=document.type,
            metadata=document.metadata_,
            version=document.version,
            seq=document.last_seq,
            size_bytes=document.size_bytes,
            last_modified_at=document.last_modified_at,
            deleted_at=document.deleted_at,
            created_at=document.inserted_at,
            updated_at=document.updated_at,
        )

    @strawberry.field(description="The content of a Y.Text root as plain text (for search, webhooks).")
    async def text(self, info: Info, root_name: RootName = "content") -> str:
        state = await _current_state(info.context, self.id)
        return rendered(yjs.render_text, state, root_name)

    @strawberry.field(description="The content of a Y.Map or Y.Array root as JSON.")
    async def json(
        self, info: Info, root_name: RootName = "content", kind: SharedTypeKind = SharedTypeKind.MAP
    ) -> JSON:
        state = await _current_state(info.context, self.id)
        return rendered(yjs.render_json, state, root_name, kind.value)


async def _current_state(context: Context, document_id: uuid.UUID) -> bytes:
    """Every acknowledged update, as one Yjs update."""
    answer = await sync.sync_document(context, document_id, None)
    return yjs.decode_base64(answer.update, field="update", max_bytes=1 << 31)


@strawberry.type(name="DocumentSync")
class DocumentSyncType:
    document_id: uuid.UUID
    update: str = strawberry.field(description="Base64 Yjs v1 update: what the given state vector lacks.")
    state_vector: str = strawberry.field(description="Base64 state vector of the server's copy.")
    seq: int = strawberry.field(description="Everything up to this sequence number is included.")


@strawberry.type(name="DocumentUpdateAck")
class DocumentUpdateAckType:
    document_id: uuid.UUID
    seq: int = strawberry.field(description="The update's place in the durable log: it is stored.")


@strawberry.type(name="DocumentUpdate")
class DocumentUpdateType:
    document_id: uuid.UUID
    seq: int
    update: str = strawberry.field(description="Base64 Yjs v1 update.")
    origin: str | None = strawberry.field(description="The `origin` its sender gave.")
    full: bool = strawberry.field(
        description="The whole document as one update, sent instead of the individual updates "
        "(a reconnect from too long ago, or after falling behind)."
    )


@strawberry.input
class CreateDocumentInput:
    name: str
    slug: str | None = strawberry.field(default=None, description="Unique in the room, if given.")
    type: DocumentKindEnum = DocumentKind.TEXT
    metadata: JSON | None = strawberry.field(default=None, description="A JSON object of at most 16 KB.")


@strawberry.input(description="Only the fields given change.")
class UpdateDocumentInput:
    name: str | None = strawberry.UNSET
    slug: str | None = strawberry.UNSET
    metadata: JSON | None = strawberry.UNSET


async def _authorize(context: Context, room_id: uuid.UUID, action: Action, what: str) -> None:
    try:
        room = await load_room(context, room_id)
        await context.policy.room(room, action)
    except NotFound:
        raise NotFound(what) from None


def _actor_id(info: Info) -> uuid.UUID | None:
    principal = info.context.principal
    return principal.user_id if isinstance(principal, Developer) else None


def _announce(info: Info, uow: UnitOfWork, document_id: uuid.UUID) -> None:
    """After the commit, every process drops its copy; live subscriptions end with NOT_FOUND."""
    announcements = info.context.state.document_changes
    uow.on_commit(lambda: announcements.announce(document_id))


@strawberry.type
class DocumentsQuery:
    @strawberry.field(description="One document, by id, or by room and slug.")
    async def document(
        self,
        info: Info,
        id: uuid.UUID | None = None,
        room_id: uuid.UUID | None = None,
        slug: str | None = None,
    ) -> DocumentType:
        async with info.context.session() as session:
            if id is not None:
                document = await service.get_document(session, id)
            elif room_id is not None and slug is not None:
                await _authorize(info.context, room_id, Action.DOCUMENTS_READ, "document")
                document = await service.get_document_by_slug(session, room_id, slug)
            else:
                raise ValidationFailed("give id, or roomId and slug", field="id")
        await _authorize(info.context, document.room_id, Action.DOCUMENTS_READ, "document")
        return DocumentType.from_model(document)

    @strawberry.field(description="Documents of a room, oldest first; `trashed` lists the trash instead.")
    async def documents(
        self, info: Info, room_id: uuid.UUID, first: int = 20, after: str | None = None, trashed: bool = False
    ) -> Connection[DocumentType]:
        await _authorize(info.context, room_id, Action.DOCUMENTS_READ, "room")
        async with info.context.session() as session:
            page = await service.list_documents(session, room_id, trashed=trashed, first=first, after=after)
        return Connection.from_page(page, DocumentType.from_model)

    @strawberry.field(
        description="Yjs sync step 2: the update a client with `stateVector` (base64) is missing, "
        "and the server's state vector. Without a state vector: the whole document."
    )
    async def document_sync(
        self, info: Info, document_id: uuid.UUID, state_vector: str | None = None
    ) -> DocumentSyncType:
        answer = await sync.sync_document(info.context, document_id, state_vector)
        return DocumentSyncType(
            document_id=uuid.UUID(answer.document_id),
            update=answer.update,
            state_vector=answer.state_vector,
            seq=answer.seq,
        )


@strawberry.type
class DocumentsMutation:
    @strawberry.mutation(description="Create a document in a room (documents:write in the room).")
    async def create_document(
        self, info: Info, room_id: uuid.UUID, input: CreateDocumentInput
    ) -> DocumentType:
        await _authorize(info.context, room_id, Action.DOCUMENTS_WRITE, "room")
        async with info.context.unit_of_work() as uow:
            document = await service.create_document(
                uow.session,
                room_id,
                name=input.name,
                slug=input.slug,
                type=input.type,
                metadata=input.metadata,
                created_by_id=_actor_id(info),
            )
        return DocumentType.from_model(document)

    @strawberry.mutation(description="Rename a document or change its slug or metadata.")
    async def update_document(self, info: Info, id: uuid.UUID, input: UpdateDocumentInput) -> DocumentType:
        async with info.context.unit_of_work() as uow:
            document = await service.get_document(uow.session, id)
            await _authorize(info.context, document.room_id, Action.DOCUMENTS_WRITE, "document")
            if input.metadata is not strawberry.UNSET:
                document.metadata_ = service.validate_metadata(input.metadata)
            await service.rename_document(
                uow.session,
                document,
                name=input.name if input.name is not strawberry.UNSET else None,
                slug=input.slug if input.slug is not strawberry.UNSET else None,
            )
        return DocumentType.from_model(document)

    @strawberry.mutation(description="Move a document to the trash: it is not served until restored.")
    async def trash_document(self, info: Info, id: uuid.UUID) -> DocumentType:
        async with info.context.unit_of_work() as uow:
            document = await service.get_document(uow.session, id)
            await _authorize(info.context, document.room_id, Action.DOCUMENTS_WRITE, "document")
            if service.trash_document(document):
                _announce(info, uow, id)
        return DocumentType.from_model(document)

    @strawberry.mutation(description="Take a document out of the trash, as it was.")
    async def restore_document(self, info: Info, id: uuid.UUID) -> DocumentType:
        async with info.context.unit_of_work() as uow:
            document = await service.get_document(uow.session, id, trashed=True)
            await _authorize(info.context, document.room_id, Action.DOCUMENTS_WRITE, "document")
            if service.restore_document(document):
                _announce(info, uow, id)
        return DocumentType.from_model(document)

    @strawberry.mutation(
        description="Apply a Yjs update (base64, v1 encoding). Answers once the update is durable, "
        "with its sequence number; a malformed update is refused and nothing is stored."
    )
    async def apply_document_update(
        self,
        info: Info,
        document_id: uuid.UUID,
        update: str,
        origin: Annotated[
            str | None, strawberry.argument(description="Your client's tag, sent back with the update.")
        ] = None,
    ) -> DocumentUpdateAckType:
        ack = await sync.apply_update(info.context, document_id, update, origin)
        return DocumentUpdateAckType(document_id=uuid.UUID(ack.document_id), seq=ack.seq)


@strawberry.type
class DocumentsSubscription:
    @strawberry.subscription(
        description="Everyone else's updates to a document, in sequence order. Give `since` (the "
        "last seq you saw, or were acknowledged) to first receive what you missed."
    )
    async def document_updates(
        self, info: Info, document_id: uuid.UUID, since: int | None = None
    ) -> AsyncGenerator[DocumentUpdateType, None]:
        raise unserved(info.context, ONLY_OVER_WEBSOCKET)
        yield  # an async generator, for the schema  # pragma: no cover


FAST_FIELDS = (
    FastMutation(
        "applyDocumentUpdate",
        lambda context, a: sync.apply_update(context, a["documentId"], a["update"], a.get("origin")),
        counts_as_request=False,
    ),
    FastSubscription(
        "documentUpdates", "DocumentUpdate", sync.open_document_updates, sync.authorize_document_updates
    ),
)
