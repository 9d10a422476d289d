"""Audit: an append-only record of who did what."""

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from app.db.base import UUIDModel
from app.db.types import fk_field, json_field, timestamp_field


class AuditLog(UUIDModel, table=True):
    """One audited action by a user, an API key, an end user or the system."""

    __tablename__ = "audit_log"
    __table_args__ = (
        sa.Index("idx_audit_log_org_created", "organization_id", "created_at"),
        sa.Index("idx_audit_log_actor_user", "actor_user_id"),
    )

    organization_id: uuid.UUID | None = fk_field("organizations.id", nullable=True)
    actor_user_id: uuid.UUID | None = fk_field("users.id", nullable=True)
    actor_api_key_id: uuid.UUID | None = fk_field("api_keys.id", nullable=True)
    actor_type: str  # "user", "api_key", "system", "end_user"

    action: str  # e.g. "auth.sign_in"
    entity_type: str | None = None
    entity_id: str | None = None
    changes: dict[str, Any] = json_field()

    ip_address: str | None = None
    user_agent: str | None = None
    created_at: datetime = timestamp_field(nullable=False, now=True)
