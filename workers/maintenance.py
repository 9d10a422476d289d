"""Housekeeping jobs: retention of high-volume rows (seed data model, "Data Retention Policies")."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import delete

from app.analytics.models import ConnectionLog
from app.db.types import utcnow
from app.notifications.models import Notification
from app.webhooks.models import WebhookDelivery
from workers.registry import job
from workers.runtime import WorkerRuntime

log = logging.getLogger(__name__)


@job(queue="maintenance", max_retries=3)
async def purge_expired(runtime: WorkerRuntime) -> dict[str, int]:
    """Delete notifications, connection logs and webhook deliveries older than their retention."""
    settings = runtime.settings
    now = utcnow()
    rules = {
        "notifications": (Notification, settings.retention_notifications_days),
        "connection_logs": (ConnectionLog, settings.retention_connection_logs_days),
        "webhook_deliveries": (WebhookDelivery, settings.retention_webhook_deliveries_days),
    }
    deleted: dict[str, int] = {}
    async with runtime.unit_of_work() as uow:
        for table, (model, days) in rules.items():
            cutoff = now - timedelta(days=days)
            result = await uow.session.execute(delete(model).where(model.inserted_at < cutoff))
            deleted[table] = result.rowcount or 0
    log.info("purge_expired deleted %s", deleted)
    return deleted
