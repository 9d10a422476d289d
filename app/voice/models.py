"""Voice: audio sessions in rooms and the users taking part."""

import enum
import uuid
from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlmodel import Relationship

from app.db.base import Timestamped, UUIDModel
from app.db.types import enum_field, fk_field, timestamp_field

if TYPE_CHECKING:
    from app.rooms.models import Room


class VoiceSessionStatus(enum.StrEnum):
    ACTIVE = "active"
    ENDED = "ended"


class VoiceSession(UUIDModel, Timestamped, table=True):
    """A voice call held in a room."""

    __tablename__ = "voice_sessions"
    __table_args__ = (sa.Index("idx_voice_sessions_room_id", "room_id"),)

    name: str | None = None
    status: VoiceSessionStatus = enum_field(VoiceSessionStatus, VoiceSessionStatus.ACTIVE)
    started_at: datetime = timestamp_field(nullable=False)
    ended_at: datetime | None = timestamp_field()

    recording_enabled: bool = False
    recording_url: str | None = None

    peak_participants: int = 0
    total_duration_seconds: int | None = None

    room_id: uuid.UUID = fk_field("rooms.id")
    started_by_id: uuid.UUID | None = fk_field("users.id", nullable=True)

    room: "Room" = Relationship(back_populates="voice_sessions", sa_relationship_kwargs={"lazy": "raise"})
    voice_participants: list["VoiceParticipant"] = Relationship(
        back_populates="voice_session",
        cascade_delete=True,
        passive_deletes=True,
        sa_relationship_kwargs={"lazy": "raise"},
    )


class VoiceParticipant(UUIDModel, Timestamped, table=True):
    """A user in a voice session."""

    __tablename__ = "voice_participants"
    __table_args__ = (sa.Index("idx_voice_participants_voice_session_id", "voice_session_id"),)

    joined_at: datetime = timestamp_field(nullable=False)
    left_at: datetime | None = timestamp_field()
    muted: bool = False
    deafened: bool = False
    speaking: bool = False

    voice_session_id: uuid.UUID = fk_field("voice_sessions.id")
    user_id: uuid.UUID = fk_field("users.id")

    voice_session: "VoiceSession" = Relationship(
        back_populates="voice_participants", sa_relationship_kwargs={"lazy": "raise"}
    )


# Register the tables that relationships above name, whichever models module is imported first.
import app.models  # noqa: E402, F401
