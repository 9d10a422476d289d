"""Email delivery: SMTP when configured, otherwise the message stays in the database mailbox."""

from __future__ import annotations

import logging
import uuid

from app.accounts.credentials_models import EmailMessage
from workers.registry import job
from workers.runtime import WorkerRuntime

log = logging.getLogger(__name__)


@job(queue="email", max_retries=5, min_backoff=1000, max_backoff=60_000)
async def deliver_email(runtime: WorkerRuntime, message_id: str) -> str:
    async with runtime.unit_of_work() as uow:
        message = await uow.session.get(EmailMessage, uuid.UUID(message_id))
        if message is None or message.status in ("sent", "stored"):
            return "skipped"
        if runtime.settings.smtp_host is None:
            message.status = "stored"  # the embedded default: read it with `syncforge mailbox`
            log.info("email %s to %s stored in the mailbox", message.id, message.to_address)
            return message.status
        # SMTP delivery is added with the email issue work; see workers/email.py history.
        raise NotImplementedError("SMTP delivery")
