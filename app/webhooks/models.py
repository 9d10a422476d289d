"""Webhooks: an organization's endpoints and the log of delivery attempts."""

import enum
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlmodel import Relationship

from app.db.base import Timestamped, UUIDModel
from app.db.types import enum_field, fk_field, json_field, timestamp_field

if TYPE_CHECKING:
    from app.accounts.models import Organization


class WebhookStatus(enum.StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    FAILED = "failed"


class WebhookDeliveryStatus(enum.StrEnum):
    PENDING = "pending"
    SUCCESS = "success"
    FAILED = "failed"
    RETRYING = "retrying"


DEFAULT_WEBHOOK_EVENTS: tuple[str, ...] = (
    "room.created",
    "room.deleted",
    "participant.joined",
    "participant.left",
    "document.updated",
    "comment.created",
)


class Webhook(UUIDModel, Timestamped, table=True):
    """An endpoint that receives an organization's events."""

    __tablename__ = "webhooks"
    __table_args__ = (
        sa.Index("idx_webhooks_org_id", "organization_id"),
        sa.Index("idx_webhooks_status", "status"),
    )

    name: str
    url: str
    # Signing secret, stored encrypted (it is needed in clear to sign payloads).
    secret: str | None = None
    events: list[str] = json_field(lambda: list(DEFAULT_WEBHOOK_EVENTS))
    status: WebhookStatus = enum_field(WebhookStatus, WebhookStatus.ACTIVE)

    # Retry configuration
    max_retries: int = 3
    retry_delay_seconds: int = 60

    # Health tracking
    consecutive_failures: int = 0
    last_triggered_at: datetime | None = timestamp_field()
    last_success_at: datetime | None = timestamp_field()
    last_failure_at: datetime | None = timestamp_field()
    last_failure_reason: str | None = None

    organization_id: uuid.UUID = fk_field("organizations.id")
    created_by_id: uuid.UUID | None = fk_field("users.id", nullable=True)

    organization: "Organization" = Relationship(
        back_populates="webhooks", sa_relationship_kwargs={"lazy": "raise"}
    )
    deliveries: list["WebhookDelivery"] = Relationship(
        back_populates="webhook",
        cascade_delete=True,
        passive_deletes=True,
        sa_relationship_kwargs={"lazy": "raise"},
    )


class WebhookDelivery(UUIDModel, Timestamped, table=True):
    """One event sent to a webhook, with its attempts and outcome."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (sa.Index("idx_webhook_deliveries_webhook_id", "webhook_id"),)

    event_type: str
    payload: dict[str, Any] = json_field()
    status: WebhookDeliveryStatus = enum_field(WebhookDeliveryStatus, WebhookDeliveryStatus.PENDING)

    response_status: int | None = None
    response_body: str | None = None
    response_time_ms: int | None = None

    attempt: int = 1
    next_retry_at: datetime | None = timestamp_field()
    delivered_at: datetime | None = timestamp_field()

    webhook_id: uuid.UUID = fk_field("webhooks.id")

    webhook: "Webhook" = Relationship(back_populates="deliveries", sa_relationship_kwargs={"lazy": "raise"})


# Register the tables that relationships above name, whichever models module is imported first.
import app.models  # noqa: E402, F401
