"""Email delivery: SMTP when configured, otherwise the message stays in the database mailbox.

Bodies carry single-use tokens: they are sent and stored, never logged.
"""

from __future__ import annotations

import email.message
import email.utils
import logging
import uuid

import aiosmtplib

from app.accounts.credentials_models import EmailMessage
from app.db.types import utcnow
from app.settings import Settings
from workers.registry import job
from workers.runtime import WorkerRuntime

log = logging.getLogger(__name__)

REDACTED_BODY = "(removed after delivery)"

SMTP_TIMEOUT_S = 30.0
IMPLICIT_TLS_PORT = 465


@job(queue="email", max_retries=5, min_backoff=1000, max_backoff=60_000)
async def deliver_email(runtime: WorkerRuntime, message_id: str) -> str:
    failure: Exception | None = None
    async with runtime.unit_of_work() as uow:
        message = await uow.session.get(EmailMessage, uuid.UUID(message_id))
        if message is None or message.status in ("sent", "stored"):
            return "skipped"
        if runtime.settings.smtp_host is None:
            message.status = "stored"  # the embedded default: read it with `syncforge mailbox`
            log.info("email %s to %s stored in the mailbox", message.id, message.to_address)
            return message.status
        try:
            await send_smtp(runtime.settings, build_message(runtime.settings, message))
        except Exception as exc:
            # Record why (never the body) and commit it, then fail the job so that Dramatiq retries.
            failure = exc
            message.status = "failed"
            message.error = f"{type(exc).__name__}: {exc}"[:500]
            log.warning("email %s to %s not delivered: %s", message.id, message.to_address, message.error)
        else:
            message.status = "sent"
            message.sent_at = utcnow()
            message.error = None
            # The body carried a single-use link: once delivered, the database keeps no usable copy.
            message.body_text = REDACTED_BODY
            log.info("email %s to %s sent by SMTP", message.id, message.to_address)
        status = message.status
    if failure is not None:
        raise failure
    return status


def build_message(settings: Settings, message: EmailMessage) -> email.message.EmailMessage:
    mail = email.message.EmailMessage()
    mail["From"] = settings.email_from
    mail["To"] = message.to_address
    mail["Subject"] = message.subject
    mail["Date"] = email.utils.format_datetime(message.created_at or utcnow())
    domain = email.utils.parseaddr(settings.email_from)[1].rpartition("@")[2] or None
    mail["Message-ID"] = email.utils.make_msgid(idstring=message.id.hex, domain=domain)
    mail.set_content(message.body_text)
    return mail


async def send_smtp(settings: Settings, mail: email.message.EmailMessage) -> None:
    # Port 465 speaks TLS from the first byte; elsewhere STARTTLS is required when smtp_starttls is on
    # and not attempted when it is off.
    implicit_tls = settings.smtp_port == IMPLICIT_TLS_PORT
    await aiosmtplib.send(
        mail,
        hostname=settings.smtp_host,
        port=settings.smtp_port,
        username=settings.smtp_username,
        password=settings.smtp_password,
        use_tls=implicit_tls,
        start_tls=False if implicit_tls else settings.smtp_starttls,
        timeout=SMTP_TIMEOUT_S,
    )
