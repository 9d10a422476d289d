"""GraphQL of document versions: list and read snapshots, take one, restore one (FR-6.6, FR-6.7)."""

from __future__ import annotations

import uuid
from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from app.auth.policy import Action
from app.auth.principal import Developer
from app.documents import service, sync, versions, yjs
from app.documents.access import document_ticket
from app.documents.content import RootName, SharedTypeKind, rendered
from app.documents.graphql import DocumentUpdateAckType
from app.documents.models import Snapshot
from app.documents.models import SnapshotType as SnapshotKind
from app.documents.restore import restore_update
from app.errors import NotFound
from app.graphql.context import Context, Info
from app.graphql.pagination import Connection

SnapshotKindEnum = strawberry.enum(SnapshotKind, name="SnapshotKind")


@strawberry.type(name="DocumentSnapshot")
class SnapshotType:
    id: uuid.UUID
    document_id: uuid.UUID
    version: int
    seq: int = strawberry.field(description="The document as of this sequence number.")
    type: SnapshotKindEnum
    name: str | None
    description: str | None
    size_bytes: int | None
    created_at: datetime
    state: strawberry.Private[bytes]

    @classmethod
    def from_model(cls, snapshot: Snapshot) -> SnapshotType:
        return cls(
            id=snapshot.id,
            document_id=snapshot.document_id,
            version=snapshot.version,
            seq=snapshot.seq,
            type=snapshot.type,
            name=snapshot.name,
            description=snapshot.description,
            size_bytes=snapshot.size_bytes,
            created_at=snapshot.inserted_at,
            state=bytes(snapshot.yjs_state or b""),
        )

    @strawberry.field(description="The document as of the snapshot: one base64 Yjs v1 update.")
    def update(self) -> str:
        return yjs.encode_base64(self.state)

    @strawberry.field(description="A Y.Text root as it was, as plain text.")
    def text(self, root_name: RootName = "content") -> str:
        return rendered(yjs.render_text, self.state, root_name)  # type: ignore[no-any-return]

    @strawberry.field(description="A Y.Map or Y.Array root as it was, as JSON.")
    def json(self, root_name: RootName = "content", kind: SharedTypeKind = SharedTypeKind.MAP) -> JSON:
        return rendered(yjs.render_json, self.state, root_name, kind.value)


async def _snapshot(context: Context, snapshot_id: uuid.UUID, action: Action) -> Snapshot:
    async with context.session() as session:
        snapshot = await versions.get_snapshot(session, snapshot_id)
    try:
        await document_ticket(context, snapshot.document_id, action)
    except NotFound:
        raise NotFound("snapshot") from None
    return snapshot


def _actor_id(context: Context) -> uuid.UUID | None:
    return context.principal.user_id if isinstance(context.principal, Developer) else None


async def _take(
    context: Context, document_id: uuid.UUID, kind: SnapshotKind, name: str | None, description: str | None
) -> Snapshot:
    ticket = await document_ticket(context, document_id, Action.DOCUMENTS_WRITE)
    state, seq = await sync.current_state(context, ticket)
    async with context.unit_of_work() as uow:
        document = await service.get_document(uow.session, document_id)
        return await versions.take_snapshot(
            uow.session,
            document,
            state,
            seq,
            type=kind,
            name=name,
            description=description,
            created_by_id=_actor_id(context),
        )


@strawberry.type
class VersionsQuery:
    @strawberry.field(description="A document's snapshots, oldest first.")
    async def document_snapshots(
        self,
        info: Info,
        document_id: uuid.UUID,
        first: int = 20,
        after: str | None = None,
        type: SnapshotKindEnum | None = None,
    ) -> Connection[SnapshotType]:
        await document_ticket(info.context, document_id, Action.DOCUMENTS_READ)
        async with info.context.session() as session:
            page = await versions.list_snapshots(session, document_id, type=type, first=first, after=after)
        return Connection.from_page(page, SnapshotType.from_model)

    @strawberry.field(description="One snapshot: the document as it was.")
    async def document_snapshot(self, info: Info, id: uuid.UUID) -> SnapshotType:
        return SnapshotType.from_model(await _snapshot(info.context, id, Action.DOCUMENTS_READ))


@strawberry.type
class VersionsMutation:
    @strawberry.mutation(description="Save the document as it is now, as a named version.")
    async def create_document_snapshot(
        self, info: Info, document_id: uuid.UUID, name: str, description: str | None = None
    ) -> SnapshotType:
        snapshot = await _take(info.context, document_id, SnapshotKind.MANUAL, name, description)
        return SnapshotType.from_model(snapshot)

    @strawberry.mutation(
        description="Make the document hold what it held in a snapshot, as a new update that every "
        "connected client receives (nobody reloads). The state before is kept as a milestone."
    )
    async def restore_document_snapshot(self, info: Info, id: uuid.UUID) -> DocumentUpdateAckType:
        context = info.context
        snapshot = await _snapshot(context, id, Action.DOCUMENTS_WRITE)
        ticket = await document_ticket(context, snapshot.document_id, Action.DOCUMENTS_WRITE)
        before = await _take(
            context,
            snapshot.document_id,
            SnapshotKind.MILESTONE,
            f"Before restoring version {snapshot.version}",
            None,
        )
        data = restore_update(before.yjs_state, bytes(snapshot.yjs_state or b""))
        ack = await sync.append(context, ticket, data, yjs.encode_base64(data), f"restore:{snapshot.id}")
        return DocumentUpdateAckType(document_id=uuid.UUID(ack.document_id), seq=ack.seq)
