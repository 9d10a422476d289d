"""Documents: Yjs CRDT state, version snapshots and the durable log of updates."""

import enum
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlmodel import Field, Relationship

from app.db.base import InsertedAt, Timestamped, UUIDModel
from app.db.types import BytesType, JSONType, enum_field, fk_field, json_field, timestamp_field

if TYPE_CHECKING:
    from app.comments.models import Comment
    from app.rooms.models import Room


class DocumentType(enum.StrEnum):
    TEXT = "text"
    JSON = "json"
    CANVAS = "canvas"
    BLOCKS = "blocks"


class SnapshotType(enum.StrEnum):
    AUTO = "auto"
    MANUAL = "manual"
    MILESTONE = "milestone"


class Document(UUIDModel, Timestamped, table=True):
    """A shared document: its compacted Yjs state, or JSON content for simple documents."""

    __tablename__ = "documents"
    __table_args__ = (
        sa.UniqueConstraint("room_id", "slug"),
        sa.Index("idx_documents_room_id", "room_id"),
        sa.Index("idx_documents_room_slug", "room_id", "slug"),
    )

    name: str
    slug: str | None = None
    type: DocumentType = enum_field(DocumentType, DocumentType.TEXT)

    # Yjs state (binary CRDT encoding)
    yjs_state: bytes | None = Field(default=None, sa_type=BytesType)
    yjs_state_vector: bytes | None = Field(default=None, sa_type=BytesType)
    content: dict[str, Any] | None = json_field(lambda: None, nullable=True)  # JSON fallback

    version: int = 1  # bumped by every compaction of the log into yjs_state
    last_modified_at: datetime | None = timestamp_field()
    # The durable log: the last sequence number appended, and the one yjs_state includes up to.
    last_seq: int = Field(default=0, sa_type=sa.BigInteger, nullable=False)
    compacted_seq: int = Field(default=0, sa_type=sa.BigInteger, nullable=False)
    # yjs_state plus the log's updates not yet compacted: what the size limit is checked against.
    size_bytes: int = Field(default=0, sa_type=sa.BigInteger, nullable=False)
    deleted_at: datetime | None = timestamp_field()  # in the trash (soft-deleted) since
    # `metadata` is reserved by SQLAlchemy: attribute metadata_, column "metadata".
    metadata_: dict[str, Any] = Field(
        default_factory=dict,
        sa_type=JSONType,
        nullable=False,
        sa_column_kwargs={"name": "metadata"},
    )

    room_id: uuid.UUID = fk_field("rooms.id")
    created_by_id: uuid.UUID | None = fk_field("users.id", nullable=True)
    last_modified_by_id: uuid.UUID | None = fk_field("users.id", nullable=True)

    room: "Room" = Relationship(back_populates="documents", sa_relationship_kwargs={"lazy": "raise"})
    snapshots: list["Snapshot"] = Relationship(
        back_populates="document",
        cascade_delete=True,
        passive_deletes=True,
        sa_relationship_kwargs={"lazy": "raise"},
    )
    # comments.document_id is optional (SET NULL): deleting a document keeps its comments.
    comments: list["Comment"] = Relationship(
        back_populates="document", passive_deletes=True, sa_relationship_kwargs={"lazy": "raise"}
    )


class Snapshot(UUIDModel, InsertedAt, table=True):
    """A saved version of a document, for recovery and time travel."""

    __tablename__ = "snapshots"
    __table_args__ = (sa.Index("idx_snapshots_document_id", "document_id"),)

    version: int
    seq: int = Field(default=0, sa_type=sa.BigInteger, nullable=False)  # the log position it is as of
    yjs_state: bytes | None = Field(default=None, sa_type=BytesType)
    content: dict[str, Any] | None = json_field(lambda: None, nullable=True)
    type: SnapshotType = enum_field(SnapshotType, SnapshotType.AUTO)
    name: str | None = None
    description: str | None = None
    size_bytes: int | None = None  # for storage limits

    document_id: uuid.UUID = fk_field("documents.id")
    created_by_id: uuid.UUID | None = fk_field("users.id", nullable=True)

    document: "Document" = Relationship(back_populates="snapshots", sa_relationship_kwargs={"lazy": "raise"})


class DocumentUpdate(UUIDModel, table=True):
    """One Yjs update in a document's append-only durable log, in acknowledgement order."""

    __tablename__ = "document_updates"
    # The unique (document_id, seq) index also serves lookups by document.
    __table_args__ = (sa.UniqueConstraint("document_id", "seq"),)

    document_id: uuid.UUID = fk_field("documents.id")
    seq: int = Field(sa_type=sa.BigInteger, nullable=False)
    update: bytes = Field(sa_type=BytesType, nullable=False)
    origin: str | None = None  # id of the client that produced the update
    created_at: datetime = timestamp_field(nullable=False, now=True)


# Register the tables that relationships above name, whichever models module is imported first.
import app.models  # noqa: E402, F401
