"""End-users: the people using a developer's app, identified by the developer's own user ids."""

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from app.db.base import Timestamped, UUIDModel
from app.db.types import fk_field, json_field, timestamp_field


class EndUser(UUIDModel, Timestamped, table=True):
    """Created or refreshed whenever a secret key mints a token for `external_id`; later issues
    reference `end_users.id` from participants, comments and notifications."""

    __tablename__ = "end_users"
    __table_args__ = (sa.UniqueConstraint("organization_id", "external_id"),)

    organization_id: uuid.UUID = fk_field("organizations.id")
    external_id: str
    name: str | None = None
    avatar_url: str | None = None
    color: str | None = None
    info: dict[str, Any] = json_field()
    last_seen_at: datetime | None = timestamp_field()
