"""Rooms: collaboration spaces and the participants connected to them."""

import enum
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlmodel import Field, Relationship

from app.db.base import Timestamped, UUIDModel
from app.db.types import JSONType, enum_field, fk_field, json_field, timestamp_field

if TYPE_CHECKING:
    from app.accounts.models import Organization
    from app.comments.models import Comment
    from app.documents.models import Document
    from app.voice.models import VoiceSession


class RoomType(enum.StrEnum):
    DOCUMENT = "document"
    CANVAS = "canvas"
    WHITEBOARD = "whiteboard"
    CUSTOM = "custom"


class RoomAccess(enum.StrEnum):
    PRIVATE = "private"
    ORGANIZATION = "organization"
    PUBLIC = "public"


class RoomStatus(enum.StrEnum):
    ACTIVE = "active"
    ARCHIVED = "archived"
    DELETED = "deleted"


class ParticipantStatus(enum.StrEnum):
    ONLINE = "online"
    AWAY = "away"
    BUSY = "busy"
    OFFLINE = "offline"


def default_room_features() -> dict[str, Any]:
    return {
        "presence": True,
        "cursors": True,
        "comments": True,
        "voice": False,
        "screen_share": False,
    }


class Room(UUIDModel, Timestamped, table=True):
    """A collaboration space where users connect in real time."""

    __tablename__ = "rooms"
    __table_args__ = (
        sa.UniqueConstraint("organization_id", "slug"),
        sa.Index("idx_rooms_org_id", "organization_id"),
        sa.Index("idx_rooms_status", "status"),
        sa.Index("idx_rooms_org_slug", "organization_id", "slug"),
    )

    name: str
    slug: str
    description: str | None = None
    type: RoomType = enum_field(RoomType, RoomType.DOCUMENT)

    # Access control
    access: RoomAccess = enum_field(RoomAccess, RoomAccess.PRIVATE)
    password_hash: str | None = None  # hash of the room password

    features: dict[str, Any] = json_field(default_room_features)
    # `metadata` is reserved by SQLAlchemy: attribute metadata_, column "metadata".
    metadata_: dict[str, Any] = Field(
        default_factory=dict,
        sa_type=JSONType,
        nullable=False,
        sa_column_kwargs={"name": "metadata"},
    )

    status: RoomStatus = enum_field(RoomStatus, RoomStatus.ACTIVE)
    archived_at: datetime | None = timestamp_field()

    # Realtime limits (FR-3): connections at once, presence expiry, cursor batching tick.
    max_participants: int = 100
    presence_ttl_s: int = 30
    cursor_tick_ms: int = 50
    # Last time someone was present; rooms empty for longer than a TTL are archived (FR-3.6).
    last_active_at: datetime | None = timestamp_field()

    organization_id: uuid.UUID = fk_field("organizations.id")
    created_by_id: uuid.UUID | None = fk_field("users.id", nullable=True)

    organization: "Organization" = Relationship(
        back_populates="rooms", sa_relationship_kwargs={"lazy": "raise"}
    )
    participants: list["Participant"] = Relationship(
        back_populates="room",
        cascade_delete=True,
        passive_deletes=True,
        sa_relationship_kwargs={"lazy": "raise"},
    )
    documents: list["Document"] = Relationship(
        back_populates="room",
        cascade_delete=True,
        passive_deletes=True,
        sa_relationship_kwargs={"lazy": "raise"},
    )
    comments: list["Comment"] = Relationship(
        back_populates="room",
        cascade_delete=True,
        passive_deletes=True,
        sa_relationship_kwargs={"lazy": "raise"},
    )
    voice_sessions: list["VoiceSession"] = Relationship(
        back_populates="room",
        cascade_delete=True,
        passive_deletes=True,
        sa_relationship_kwargs={"lazy": "raise"},
    )


class Participant(UUIDModel, Timestamped, table=True):
    """One connection of a user to a room (the durable trace of live presence)."""

    __tablename__ = "participants"
    __table_args__ = (
        sa.Index("idx_participants_room_id", "room_id"),
        sa.Index("idx_participants_user_id", "user_id"),
        sa.Index("idx_participants_end_user_id", "end_user_id"),
        sa.Index(
            "idx_participants_connected",
            "room_id",
            postgresql_where=sa.text("disconnected_at IS NULL"),
            sqlite_where=sa.text("disconnected_at IS NULL"),
        ),
    )

    # Connection
    connection_id: str
    connected_at: datetime = timestamp_field(nullable=False)
    disconnected_at: datetime | None = timestamp_field()
    last_seen_at: datetime | None = timestamp_field()

    status: ParticipantStatus = enum_field(ParticipantStatus, ParticipantStatus.ONLINE)

    # Last cursor state, kept for analytics
    cursor_x: float | None = None
    cursor_y: float | None = None
    selection_start: int | None = None
    selection_end: int | None = None

    user_agent: str | None = None
    ip_address: str | None = None
    presence_data: dict[str, Any] = json_field()  # custom presence data from the client

    room_id: uuid.UUID = fk_field("rooms.id")
    # Exactly one of the two: a developer (users) or an end-user of the developer's app.
    user_id: uuid.UUID | None = fk_field("users.id", nullable=True)
    end_user_id: uuid.UUID | None = fk_field("end_users.id", nullable=True)

    room: "Room" = Relationship(back_populates="participants", sa_relationship_kwargs={"lazy": "raise"})


# Register the tables that relationships above name, whichever models module is imported first.
import app.models  # noqa: E402, F401
