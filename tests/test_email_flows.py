"""Email verification and password reset by single-use, expiring tokens: the embedded mailbox, real SMTP
delivery (aiosmtpd), the `syncforge mailbox` command, and no token or password in the logs."""

from __future__ import annotations

import asyncio
import email
import email.policy
import logging
import os
import re
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import func, select, update

from app.accounts.credentials_models import EmailMessage, UserToken
from app.audit.models import AuditLog
from app.db import create_engine, create_session_factory
from app.db.migrate import upgrade
from app.db.types import utcnow
from app.main import create_app
from app.security.tokens import hash_token
from tests import factories
from tests.conftest import free_port, make_settings
from tests.gql import GQL, PASSWORD, sign_up

REPO_ROOT = Path(__file__).resolve().parents[1]
NEW_PASSWORD = "a brand new passphrase 42"
VERIFY = "mutation($t: String!) { verifyEmail(token: $t) { id emailVerified status } }"
REQUEST_VERIFICATION = "mutation { requestEmailVerification }"
REQUEST_RESET = "mutation($e: String!) { requestPasswordReset(email: $e) }"
RESET = "mutation($t: String!, $p: String!) { resetPassword(token: $t, newPassword: $p) }"
LOG_IN = "mutation($i: LogInInput!) { logIn(input: $i) { accessToken refreshToken } }"
REFRESH = "mutation($t: String!) { refreshSession(refreshToken: $t) { accessToken } }"


def token_in(body: str, path: str) -> str:
    """The token of the link in an email body; the raw token is printed in the body as well."""
    body = body.replace("\r\n", "\n")
    match = re.search(rf"^http://\S+/{path}\?token=(\S+)$", body, re.MULTILINE)
    assert match, body
    token = unquote(match.group(1))
    assert re.search(rf"^{re.escape(token)}$", body, re.MULTILINE), "the raw token is in the body too"
    return token


async def mails_to(session_factory, address: str) -> list[EmailMessage]:  # type: ignore[no-untyped-def]
    async with session_factory() as session:
        query = select(EmailMessage).where(EmailMessage.to_address == address)
        return list((await session.execute(query.order_by(EmailMessage.created_at))).scalars())  # type: ignore[arg-type]


async def wait_for_mail(
    session_factory, address: str, *, count: int = 1, status: str = "stored"
) -> EmailMessage:  # type: ignore[no-untyped-def]
    """The newest of `count` messages to `address`, once the delivery job has given it `status`."""
    messages: list[EmailMessage] = []
    for _ in range(200):
        messages = await mails_to(session_factory, address)
        if len(messages) >= count and messages[count - 1].status == status:
            return messages[count - 1]
        await asyncio.sleep(0.05)
    raise AssertionError(f"no message #{count} with status {status!r} to {address}: {messages}")


async def audit_actions(session_factory, user_id: str) -> list[AuditLog]:  # type: ignore[no-untyped-def]
    async with session_factory() as session:
        query = select(AuditLog).where(AuditLog.entity_id == user_id).order_by(AuditLog.created_at)  # type: ignore[arg-type]
        return list((await session.execute(query)).scalars())


async def test_verification_through_the_embedded_mailbox(anon: GQL, session_factory, running_worker) -> None:  # type: ignore[no-untyped-def]
    dev = await sign_up(anon)
    mail = await wait_for_mail(session_factory, dev.email, status="stored")
    assert "Verify" in mail.subject and mail.sent_at is None and mail.error is None
    token = token_in(mail.body_text, "verify-email")
    async with session_factory() as session:
        stored = (
            await session.execute(select(UserToken).where(UserToken.token_hash == hash_token(token)))
        ).scalar_one()
    assert stored.used_at is None and str(stored.user_id) == dev.user_id
    me = (await dev.gql.data("{ me { emailVerified status } }"))["me"]
    assert me == {"emailVerified": False, "status": "PENDING_VERIFICATION"}

    verified = (await anon.data(VERIFY, t=token))["verifyEmail"]
    assert verified == {"id": dev.user_id, "emailVerified": True, "status": "ACTIVE"}
    assert (await dev.gql.data("{ me { emailVerified } }"))["me"]["emailVerified"] is True

    again = await anon.error(VERIFY, t=token)
    assert again["extensions"]["code"] == "NOT_FOUND" and again["extensions"]["reason"] == "USED"
    assert "already been used" in again["message"]
    unknown = await anon.error(VERIFY, t="not-a-token")
    assert unknown["extensions"]["code"] == "NOT_FOUND" and unknown["extensions"]["reason"] == "UNKNOWN"

    already = await dev.gql.error(REQUEST_VERIFICATION)
    assert already["extensions"]["code"] == "CONFLICT"
    actions = [row.action for row in await audit_actions(session_factory, dev.user_id)]
    assert actions.count("auth.email_verified") == 1


async def test_expired_and_superseded_verification_tokens_fail(
    anon: GQL, session_factory, running_worker
) -> None:  # type: ignore[no-untyped-def]
    dev = await sign_up(anon)
    first = token_in((await wait_for_mail(session_factory, dev.email)).body_text, "verify-email")
    assert (await anon.error(REQUEST_VERIFICATION))["extensions"]["code"] == "UNAUTHORIZED"
    assert (await dev.gql.data(REQUEST_VERIFICATION))["requestEmailVerification"] is True
    second = token_in((await wait_for_mail(session_factory, dev.email, count=2)).body_text, "verify-email")
    assert second != first

    superseded = await anon.error(VERIFY, t=first)
    assert superseded["extensions"]["code"] == "NOT_FOUND" and superseded["extensions"]["reason"] == "EXPIRED"
    async with session_factory() as session:
        await session.execute(
            update(UserToken)
            .where(UserToken.token_hash == hash_token(second))
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
        await session.commit()
    expired = await anon.error(VERIFY, t=second)
    assert expired["extensions"]["code"] == "NOT_FOUND" and expired["extensions"]["reason"] == "EXPIRED"
    assert "expired" in expired["message"]
    assert (await dev.gql.data("{ me { emailVerified } }"))["me"]["emailVerified"] is False


class Inbox:
    """An aiosmtpd handler that keeps what it receives, and can refuse with a temporary failure."""

    def __init__(self) -> None:
        self.envelopes: list[Any] = []
        self.attempts = 0
        self.refuse = False

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.attempts += 1
        if self.refuse:
            return "451 4.3.0 try again later"
        self.envelopes.append(envelope)
        return "250 OK"

    def parsed(self, subject_part: str) -> list[email.message.EmailMessage]:
        messages = [
            email.message_from_bytes(envelope.original_content, policy=email.policy.default)
            for envelope in self.envelopes
        ]
        return [m for m in messages if subject_part in str(m["Subject"])]  # type: ignore[misc]


@pytest.fixture
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


@pytest.fixture
async def smtp_gql(database_url: str, smtp_server: tuple[Inbox, int]) -> AsyncIterator[GQL]:
    """A second app whose emails go to the local SMTP server, with its jobs running."""
    _, port = smtp_server
    settings = make_settings(database_url, smtp_host="127.0.0.1", smtp_port=port, smtp_starttls=False)
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        jobs = application.state.syncforge.jobs
        worker = None if jobs.is_embedded else jobs.start_worker(1)
        try:
            transport = httpx.ASGITransport(app=application)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                yield GQL(client)
        finally:
            if worker is not None:
                worker.stop()


async def wait_until(condition: Any, what: str) -> None:
    for _ in range(300):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def test_password_reset_by_smtp(
    smtp_gql: GQL,
    smtp_server: tuple[Inbox, int],
    session_factory,
    caplog: pytest.LogCaptureFixture,
) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.DEBUG)
    inbox, _ = smtp_server
    dev = await sign_up(smtp_gql)
    assert (await smtp_gql.data(REQUEST_RESET, e=f"  {dev.email.upper()} "))["requestPasswordReset"] is True
    await wait_until(lambda: inbox.parsed("Reset"), "the reset email")

    (message,) = inbox.parsed("Reset")
    envelope = next(e for e in inbox.envelopes if b"Reset" in e.original_content)
    assert envelope.mail_from == "no-reply@syncforge.local" and envelope.rcpt_tos == [dev.email]
    assert message["To"] == dev.email and "no-reply@syncforge.local" in str(message["From"])
    assert message["Message-ID"] and message["Date"]
    body = message.get_content()
    token = token_in(body, "reset-password")
    assert "http://127.0.0.1:8000/reset-password?token=" in body
    stored = await wait_for_mail(session_factory, dev.email, count=2, status="sent")
    assert stored.sent_at is not None and stored.error is None
    assert token not in stored.body_text  # delivered: the database keeps no usable copy of the link

    weak = await smtp_gql.error(RESET, t=token, p="short")
    assert weak["extensions"]["code"] == "VALIDATION_ERROR" and weak["extensions"]["field"] == "newPassword"
    assert (await smtp_gql.data(RESET, t=token, p=NEW_PASSWORD))["resetPassword"] is True
    twice = await smtp_gql.error(RESET, t=token, p=NEW_PASSWORD + "!")
    assert twice["extensions"]["code"] == "NOT_FOUND" and twice["extensions"]["reason"] == "USED"

    old = await smtp_gql.error(LOG_IN, i={"email": dev.email, "password": PASSWORD})
    assert old["extensions"]["code"] == "UNAUTHORIZED"
    session = (await smtp_gql.data(LOG_IN, i={"email": dev.email, "password": NEW_PASSWORD}))["logIn"]
    refused = await smtp_gql.error(REFRESH, t=dev.refresh_token)
    assert refused["extensions"]["code"] == "UNAUTHORIZED"

    rows = await audit_actions(session_factory, dev.user_id)
    actions = [row.action for row in rows]
    assert actions.count("auth.password_reset_requested") == 1 and actions.count("auth.password_reset") == 1
    assert token not in str([(row.changes, row.user_agent) for row in rows])

    secrets = [token, PASSWORD, NEW_PASSWORD, dev.refresh_token, session["refreshToken"]]
    # The SMTP server of this test ("mail.log") logs what it receives; the service must not.
    ours = [r for r in caplog.records if not r.name.startswith("mail.")]
    logs = "".join(f"{r.getMessage()} {r.args} {r.exc_text}" for r in ours)
    assert any("sent by SMTP" in r.getMessage() for r in ours)
    for secret in secrets:
        assert secret not in logs


async def test_failed_smtp_delivery_is_recorded_and_retried(
    smtp_gql: GQL, smtp_server: tuple[Inbox, int], session_factory
) -> None:  # type: ignore[no-untyped-def]
    inbox, _ = smtp_server
    inbox.refuse = True
    dev = await sign_up(smtp_gql)
    failed = await wait_for_mail(session_factory, dev.email, status="failed")
    assert failed.error is not None and "451" in failed.error and "token" not in failed.error
    inbox.refuse = False  # the next attempt (Dramatiq's retry, after its backoff) is accepted
    sent = await wait_for_mail(session_factory, dev.email, status="sent")
    assert sent.error is None and inbox.attempts >= 2
    (message,) = inbox.parsed("Verify")
    assert token_in(message.get_content(), "verify-email")


async def test_reset_for_an_unknown_email_answers_true_and_sends_nothing(
    anon: GQL, session_factory, running_worker
) -> None:  # type: ignore[no-untyped-def]
    dev = await sign_up(anon)
    await wait_for_mail(session_factory, dev.email)
    for address in ("nobody@example.com", "not an address", dev.email.replace("@", "+x@")):
        assert (await anon.data(REQUEST_RESET, e=address))["requestPasswordReset"] is True
    # A message would have been written in the mutation's own transaction: no need to wait for jobs.
    async with session_factory() as session:
        messages = (await session.execute(select(EmailMessage.to_address))).scalars().all()
        tokens = (await session.execute(select(func.count()).select_from(UserToken))).scalar_one()
        requested = (
            await session.execute(
                select(func.count())
                .select_from(AuditLog)
                .where(AuditLog.action == "auth.password_reset_requested")
            )
        ).scalar_one()
    assert messages == [dev.email] and tokens == 1 and requested == 0

    # The same request for a real account sends one; a second request replaces the first.
    assert (await anon.data(REQUEST_RESET, e=dev.email))["requestPasswordReset"] is True
    first = token_in((await wait_for_mail(session_factory, dev.email, count=2)).body_text, "reset-password")
    assert (await anon.data(REQUEST_RESET, e=dev.email))["requestPasswordReset"] is True
    second = token_in((await wait_for_mail(session_factory, dev.email, count=3)).body_text, "reset-password")
    replaced = await anon.error(RESET, t=first, p=NEW_PASSWORD)
    assert replaced["extensions"]["code"] == "NOT_FOUND" and replaced["extensions"]["reason"] == "EXPIRED"
    verification = token_in((await mails_to(session_factory, dev.email))[0].body_text, "verify-email")
    wrong_purpose = await anon.error(RESET, t=verification, p=NEW_PASSWORD)
    assert wrong_purpose["extensions"]["reason"] == "UNKNOWN"
    assert (await anon.data(RESET, t=second, p=NEW_PASSWORD))["resetPassword"] is True


def run_cli(args: list[str], cwd: Path, database_url: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        cwd=cwd,
        env={**env, "DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_mailbox_command_prints_the_latest_messages(tmp_path: Path) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'mailbox.db'}"
    settings = make_settings(database_url, redis_url=None)
    await asyncio.to_thread(upgrade, settings)
    engine = create_engine(settings)
    now = utcnow()
    await factories.add(
        create_session_factory(engine),
        EmailMessage(
            to_address="ada@example.com",
            subject="Verify your SyncForge email address",
            body_text="open http://127.0.0.1:8000/verify-email?token=abc",
            status="stored",
            created_at=now - timedelta(minutes=1),
        ),
        EmailMessage(
            to_address="bob@example.com", subject="Reset your password", body_text="xyz", created_at=now
        ),
    )
    await engine.dispose()
    cwd = REPO_ROOT

    everything = await asyncio.to_thread(run_cli, ["mailbox"], cwd, database_url)
    assert everything.returncode == 0, everything.stderr
    out = everything.stdout
    assert "Subject: Verify your SyncForge email address" in out and "Status:  stored" in out
    assert "verify-email?token=abc" in out and "To:      ada@example.com" in out
    assert out.index("Reset your password") < out.index("Verify your")  # newest first

    latest = await asyncio.to_thread(run_cli, ["mailbox", "--limit", "1"], cwd, database_url)
    assert "Reset your password" in latest.stdout and "Verify" not in latest.stdout
    only_ada = await asyncio.to_thread(run_cli, ["mailbox", "--to", "ADA@example.com"], cwd, database_url)
    assert "Verify your" in only_ada.stdout and "Reset" not in only_ada.stdout
    nobody = await asyncio.to_thread(run_cli, ["mailbox", "--to", "zed@example.com"], cwd, database_url)
    assert nobody.returncode == 0 and "No email to zed@example.com" in nobody.stdout

    unmigrated = f"sqlite+aiosqlite:///{tmp_path / f'{uuid.uuid4().hex}.db'}"
    failed = await asyncio.to_thread(run_cli, ["mailbox"], cwd, unmigrated)
    assert failed.returncode == 2 and failed.stderr.startswith("syncforge: error: DATABASE_URL:")
    assert "Traceback" not in failed.stderr


async def test_tokens_and_passwords_never_reach_the_logs(
    anon: GQL, session_factory, running_worker, caplog: pytest.LogCaptureFixture
) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.DEBUG)
    dev = await sign_up(anon)
    verification = token_in((await wait_for_mail(session_factory, dev.email)).body_text, "verify-email")
    await anon.data(VERIFY, t=verification)
    await anon.raw(VERIFY, t=verification)  # refused: already used
    await anon.data(REQUEST_RESET, e=dev.email)
    reset = token_in((await wait_for_mail(session_factory, dev.email, count=2)).body_text, "reset-password")
    await anon.raw(RESET, t=reset, p="tiny pw 1")
    await anon.data(RESET, t=reset, p=NEW_PASSWORD)
    await anon.raw(RESET, t=reset, p=NEW_PASSWORD)  # refused: already used
    session = (await anon.data(LOG_IN, i={"email": dev.email, "password": NEW_PASSWORD}))["logIn"]

    assert any("stored in the mailbox" in r.getMessage() for r in caplog.records)
    logs = caplog.text + "".join(f"{r.args} {r.exc_text}" for r in caplog.records)
    secrets = {
        "verification token": verification,
        "reset token": reset,
        "password": PASSWORD,
        "new password": NEW_PASSWORD,
        "rejected password": "tiny pw 1",
        "refresh token": session["refreshToken"],
    }
    for name, value in secrets.items():
        assert value not in logs, f"{name} appears in the logs"


async def test_email_requests_are_capped_per_address(anon: GQL, settings) -> None:  # type: ignore[no-untyped-def]
    limit = int(settings.email_request_limit.split("/")[0])
    address = "someone-unknown@example.com"  # the cap holds whether or not an account exists
    for _ in range(limit):
        assert (await anon.data(REQUEST_RESET, e=address))["requestPasswordReset"] is True
    capped = await anon.error(REQUEST_RESET, e=address.upper())
    assert capped["extensions"]["code"] == "RATE_LIMITED"
