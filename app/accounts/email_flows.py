"""Email verification and password reset: single-use, expiring tokens sent by email.

Only a hash of each token is stored. A token is spent by a conditional UPDATE, so of two concurrent
uses exactly one succeeds; a new request for the same purpose invalidates the user's older tokens.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from urllib.parse import quote

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts import sessions
from app.accounts.credentials_models import UserToken, UserTokenPurpose
from app.accounts.models import User, UserStatus
from app.db import UnitOfWork
from app.db.types import utcnow
from app.email.outbox import queue_email
from app.errors import Conflict, DomainError, NotFound
from app.security.passwords import hash_password
from app.security.tokens import hash_token, new_token
from app.settings import Settings
from app.state import AppState

_TOKEN_ERRORS = {
    "UNKNOWN": "this token is not valid: request a new email",
    "EXPIRED": "this token has expired or was replaced by a newer one: request a new email",
    "USED": "this token has already been used",
}


class InvalidToken(NotFound):
    """An emailed token that is unknown, expired, superseded or already used (code NOT_FOUND)."""

    def __init__(self, reason: str) -> None:
        DomainError.__init__(self, _TOKEN_ERRORS[reason], field="token", reason=reason)


async def send_verification(state: AppState, uow: UnitOfWork, user: User) -> None:
    await _invalidate_outstanding(uow.session, user.id, UserTokenPurpose.VERIFY_EMAIL)
    ttl_h = state.settings.email_verification_ttl_h
    token = _issue(uow.session, user, UserTokenPurpose.VERIFY_EMAIL, timedelta(hours=ttl_h))
    link = f"{state.settings.public_url}/verify-email?token={quote(token)}"
    await queue_email(
        uow,
        state.jobs,
        to=user.email,
        subject="Verify your SyncForge email address",
        body=(
            f"{_greeting(user)}\n\n"
            f"Confirm this address by opening:\n{link}\n\n"
            f"Or run the verifyEmail mutation with this token:\n{token}\n\n"
            f"The link expires in {ttl_h} hours."
        ),
    )


async def request_verification(state: AppState, uow: UnitOfWork, user: User) -> None:
    """Send a new verification email (the previous one stops working)."""
    if user.email_verified_at is not None:
        raise Conflict("this email address is already verified")
    await send_verification(state, uow, user)


async def verify_email(session: AsyncSession, token: str) -> User:
    row = await _spend(session, token, UserTokenPurpose.VERIFY_EMAIL)
    user = await _user_of(session, row)
    if user.email_verified_at is None:
        user.email_verified_at = utcnow()
    if user.status == UserStatus.PENDING_VERIFICATION:
        user.status = UserStatus.ACTIVE
    await _invalidate_outstanding(session, user.id, UserTokenPurpose.VERIFY_EMAIL)
    return user


async def request_password_reset(state: AppState, uow: UnitOfWork, email: str) -> User | None:
    """Email a reset link if an account has this address. The caller answers the same either way
    (no account enumeration); the user is returned only so that the caller can audit."""
    user = await sessions.find_user_by_email(uow.session, email.strip().lower())
    if user is None or user.status == UserStatus.SUSPENDED:
        return None
    await _invalidate_outstanding(uow.session, user.id, UserTokenPurpose.RESET_PASSWORD)
    ttl_min = state.settings.password_reset_ttl_min
    token = _issue(uow.session, user, UserTokenPurpose.RESET_PASSWORD, timedelta(minutes=ttl_min))
    link = f"{state.settings.public_url}/reset-password?token={quote(token)}"
    await queue_email(
        uow,
        state.jobs,
        to=user.email,
        subject="Reset your SyncForge password",
        body=(
            f"{_greeting(user)}\n\n"
            f"Someone asked to reset the password of this SyncForge account. To choose a new one, open:\n"
            f"{link}\n\n"
            f"Or run the resetPassword mutation with this token:\n{token}\n\n"
            f"The link expires in {ttl_min} minutes and works once. "
            f"If you did not ask for it, ignore this email: your password stays as it is."
        ),
    )
    return user


async def reset_password(session: AsyncSession, settings: Settings, token: str, new_password: str) -> User:
    """Set a new password with a reset token; every session of the user is signed out."""
    sessions.check_password_strength(settings, new_password, field="newPassword")
    row = await _spend(session, token, UserTokenPurpose.RESET_PASSWORD)
    user = await _user_of(session, row)
    user.hashed_password = await hash_password(new_password)
    await sessions.revoke_all(session, user.id)
    await _invalidate_outstanding(session, user.id, UserTokenPurpose.RESET_PASSWORD)
    return user


def _issue(session: AsyncSession, user: User, purpose: UserTokenPurpose, ttl: timedelta) -> str:
    token = new_token()
    session.add(
        UserToken(user_id=user.id, purpose=purpose, token_hash=hash_token(token), expires_at=utcnow() + ttl)
    )
    return token


async def _spend(session: AsyncSession, token: str, purpose: UserTokenPurpose) -> UserToken:
    row = (
        await session.execute(
            select(UserToken).where(UserToken.token_hash == hash_token(token), UserToken.purpose == purpose)
        )
    ).scalar_one_or_none()
    now = utcnow()
    if row is None:
        raise InvalidToken("UNKNOWN")
    if row.used_at is not None:
        raise InvalidToken("USED")
    if row.expires_at <= now:
        raise InvalidToken("EXPIRED")
    claimed = await session.execute(
        update(UserToken)
        .where(UserToken.id == row.id, UserToken.used_at.is_(None))  # type: ignore[union-attr]
        .values(used_at=now)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        raise InvalidToken("USED")  # spent by a concurrent request
    return row


async def _user_of(session: AsyncSession, row: UserToken) -> User:
    user = await session.get(User, row.user_id)
    if user is None:
        raise InvalidToken("UNKNOWN")
    return user


async def _invalidate_outstanding(
    session: AsyncSession, user_id: uuid.UUID, purpose: UserTokenPurpose
) -> None:
    """Unused tokens of this purpose stop working (they read as expired)."""
    now = utcnow()
    await session.execute(
        update(UserToken)
        .where(
            UserToken.user_id == user_id,
            UserToken.purpose == purpose,
            UserToken.used_at.is_(None),  # type: ignore[union-attr]
            UserToken.expires_at > now,
        )
        .values(expires_at=now)
    )


def _greeting(user: User) -> str:
    return f"Hello{' ' + user.name if user.name else ''},"
