"""Notifications: per-user alerts about collaboration events."""

import enum
import uuid
from datetime import datetime

import sqlalchemy as sa

from app.db.base import InsertedAt, UUIDModel
from app.db.types import enum_field, fk_field, timestamp_field


class NotificationType(enum.StrEnum):
    MENTION = "mention"
    REPLY = "reply"
    COMMENT = "comment"
    REACTION = "reaction"
    ROOM_INVITE = "room_invite"
    DOCUMENT_SHARED = "document_shared"
    VOICE_CALL = "voice_call"
    SYSTEM = "system"


class Notification(UUIDModel, InsertedAt, table=True):
    """A notification for one user, optionally about a room and triggered by an actor."""

    __tablename__ = "notifications"
    __table_args__ = (
        sa.Index("idx_notifications_user_id", "user_id"),
        sa.Index(
            "idx_notifications_unread",
            "user_id",
            postgresql_where=sa.text("read = false"),
            sqlite_where=sa.text("read = 0"),
        ),
    )

    type: NotificationType = enum_field(NotificationType)
    title: str
    body: str | None = None

    # Related entity: resource_type is "room", "document", "comment", ...
    resource_type: str | None = None
    resource_id: uuid.UUID | None = None
    action_url: str | None = None  # deep link

    read: bool = False
    read_at: datetime | None = timestamp_field()
    delivered_at: datetime | None = timestamp_field()
    clicked_at: datetime | None = timestamp_field()
    group_key: str | None = None  # groups related notifications

    user_id: uuid.UUID = fk_field("users.id")
    actor_id: uuid.UUID | None = fk_field("users.id", nullable=True)  # who triggered it
    room_id: uuid.UUID | None = fk_field("rooms.id", nullable=True)


# Built on the mapped columns so that migrations compare it as columns, not as text.
sa.Index("idx_notifications_created_at", Notification.user_id, Notification.inserted_at.desc())
