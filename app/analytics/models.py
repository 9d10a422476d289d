"""Analytics: daily room usage aggregates and connection logs."""

import datetime
import enum
import uuid
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field

from app.db.base import InsertedAt, Timestamped, UUIDModel
from app.db.types import JSONType, enum_field, fk_field


class ConnectionEventType(enum.StrEnum):
    CONNECT = "connect"
    DISCONNECT = "disconnect"
    ERROR = "error"
    RECONNECT = "reconnect"


class RoomAnalytics(UUIDModel, Timestamped, table=True):
    """Usage of one room on one day."""

    __tablename__ = "room_analytics"
    __table_args__ = (
        sa.UniqueConstraint("room_id", "date"),
        sa.Index("idx_room_analytics_room_date", "room_id", "date"),
    )

    date: datetime.date = Field(sa_type=sa.Date, nullable=False)

    # Connection metrics
    total_connections: int = 0
    unique_users: int = 0
    peak_concurrent_users: int = 0
    total_session_duration_seconds: int = 0

    # Collaboration metrics
    documents_edited: int = 0
    comments_created: int = 0
    reactions_added: int = 0
    voice_minutes: int = 0

    room_id: uuid.UUID = fk_field("rooms.id")


class ConnectionLog(UUIDModel, InsertedAt, table=True):
    """One connection event, for debugging and analytics."""

    __tablename__ = "connection_logs"
    __table_args__ = (sa.Index("idx_connection_logs_room_created", "room_id", "inserted_at"),)

    event_type: ConnectionEventType = enum_field(ConnectionEventType)
    connection_id: str | None = None
    user_agent: str | None = None
    ip_address: str | None = None
    region: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    # `metadata` is reserved by SQLAlchemy: attribute metadata_, column "metadata".
    metadata_: dict[str, Any] = Field(
        default_factory=dict,
        sa_type=JSONType,
        nullable=False,
        sa_column_kwargs={"name": "metadata"},
    )

    room_id: uuid.UUID = fk_field("rooms.id")
    user_id: uuid.UUID | None = fk_field("users.id", nullable=True)
    end_user_id: uuid.UUID | None = fk_field("end_users.id", nullable=True)
