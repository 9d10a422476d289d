"""Queue an email inside the caller's unit of work; it is delivered after commit by a job."""

from __future__ import annotations

from app.accounts.credentials_models import EmailMessage
from app.db import UnitOfWork
from workers.broker import JobQueue


async def queue_email(uow: UnitOfWork, jobs: JobQueue, *, to: str, subject: str, body: str) -> EmailMessage:
    from workers.email import deliver_email  # the job module imports the app, not the reverse

    message = EmailMessage(to_address=to, subject=subject, body_text=body)
    uow.session.add(message)
    await uow.session.flush()
    message_id = str(message.id)

    async def enqueue() -> None:
        await jobs.enqueue(deliver_email, message_id)

    uow.on_commit(enqueue)
    return message
