"""Events: the transactional outbox of domain events waiting to be dispatched."""

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from app.db.base import UUIDModel
from app.db.types import fk_field, json_field, timestamp_field


class OutboxEvent(UUIDModel, table=True):
    """A domain event written in the same transaction as its change, dispatched afterwards."""

    __tablename__ = "outbox_events"
    __table_args__ = (
        sa.Index(
            "idx_outbox_events_pending",
            "created_at",
            postgresql_where=sa.text("dispatched_at IS NULL"),
            sqlite_where=sa.text("dispatched_at IS NULL"),
        ),
    )

    organization_id: uuid.UUID = fk_field("organizations.id")
    type: str  # e.g. "room.created"
    payload: dict[str, Any] = json_field()
    created_at: datetime = timestamp_field(nullable=False, now=True)
    dispatched_at: datetime | None = timestamp_field()
    attempts: int = 0
