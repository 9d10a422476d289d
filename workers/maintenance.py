"""Housekeeping jobs: retention of high-volume rows (seed data model, "Data Retention Policies")
and of expired credentials."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import delete

from app.accounts.credentials_models import OAuthState, RefreshToken, UserToken
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
        # Credentials past their expiry are useless; keep a day for investigations.
        for model in (UserToken, RefreshToken, OAuthState):
            cutoff = now - timedelta(days=1)
            result = await uow.session.execute(delete(model).where(model.expires_at < cutoff))
            deleted[model.__tablename__] = result.rowcount or 0
    log.info("purge_expired deleted %s", deleted)
    return deleted
