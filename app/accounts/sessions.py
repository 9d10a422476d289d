"""Developer accounts: sign-up, log-in, rotating refresh tokens, log-out, password changes."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts import mfa
from app.accounts.credentials_models import RefreshToken
from app.accounts.models import User, UserStatus
from app.audit import service as audit
from app.db.types import utcnow
from app.errors import Conflict, Unauthorized, ValidationFailed
from app.security import jwt
from app.security.keys import Keys
from app.security.passwords import hash_password, needs_rehash, verify_password
from app.security.tokens import hash_token, new_token
from app.settings import Settings

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
MAX_PASSWORD_LENGTH = 1024


@dataclass(frozen=True)
class ClientInfo:
    ip: str | None = None
    user_agent: str | None = None


@dataclass(frozen=True)
class Session:
    user: User
    access_token: str
    access_token_expires_at: datetime
    refresh_token: str
    refresh_token_expires_at: datetime


def normalize_email(email: str) -> str:
    email = email.strip().lower()
    if len(email) > 254 or not _EMAIL.match(email):
        raise ValidationFailed("not a valid email address", field="email")
    return email


def check_password_strength(settings: Settings, password: str, field: str = "password") -> None:
    if len(password) < settings.password_min_length:
        raise ValidationFailed(
            f"password must be at least {settings.password_min_length} characters", field=field
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ValidationFailed(f"password must be at most {MAX_PASSWORD_LENGTH} characters", field=field)


async def find_user_by_email(session: AsyncSession, email: str) -> User | None:
    return (await session.execute(select(User).where(User.email == email))).scalar_one_or_none()


async def sign_up(
    session: AsyncSession, settings: Settings, *, email: str, password: str, name: str | None
) -> User:
    email = normalize_email(email)
    check_password_strength(settings, password)
    if await find_user_by_email(session, email) is not None:
        raise Conflict("an account with this email already exists", field="email")
    user = User(email=email, name=(name or "").strip() or None, hashed_password=await hash_password(password))
    session.add(user)
    await session.flush()
    return user


async def issue_session(
    session: AsyncSession,
    settings: Settings,
    keys: Keys,
    user: User,
    client: ClientInfo,
    *,
    family_id: uuid.UUID | None = None,
) -> Session:
    now = utcnow()
    access_ttl = timedelta(seconds=settings.access_token_ttl_s)
    access = jwt.encode(keys.jwt, subject=str(user.id), audience=jwt.DEVELOPER_AUDIENCE, ttl=access_ttl)
    refresh = new_token()
    refresh_expires = now + timedelta(days=settings.refresh_token_ttl_days)
    session.add(
        RefreshToken(
            user_id=user.id,
            family_id=family_id or uuid.uuid4(),
            token_hash=hash_token(refresh),
            expires_at=refresh_expires,
            user_agent=(client.user_agent or "")[:300] or None,
            ip_address=client.ip,
        )
    )
    return Session(user, access, now + access_ttl, refresh, refresh_expires)


async def log_in(
    session: AsyncSession,
    settings: Settings,
    keys: Keys,
    *,
    email: str,
    password: str,
    totp_code: str | None,
    recovery_code: str | None,
    client: ClientInfo,
) -> Session:
    """Raises Unauthorized (one message for unknown email and wrong password). Failed attempts
    are audited by the caller in its own transaction, since this one is rolled back."""
    user = await find_user_by_email(session, email.strip().lower())
    if not await verify_password(user.hashed_password if user else None, password) or user is None:
        raise Unauthorized("wrong email or password", reason="INVALID_CREDENTIALS")
    if user.status == UserStatus.SUSPENDED:
        raise Unauthorized("this account is suspended", reason="SUSPENDED")
    factor = await mfa.verify_second_factor(session, keys, user, totp_code, recovery_code)
    if user.hashed_password and needs_rehash(user.hashed_password):
        user.hashed_password = await hash_password(password)
    audit.record(
        session,
        "auth.sign_in",
        actor_user_id=user.id,
        entity_type="user",
        entity_id=user.id,
        changes={"method": "password", "second_factor": factor},
        ip_address=client.ip,
        user_agent=client.user_agent,
    )
    return await issue_session(session, settings, keys, user, client)


async def refresh(
    session: AsyncSession, settings: Settings, keys: Keys, *, refresh_token: str, client: ClientInfo
) -> Session:
    """Rotate: the presented token is spent and a new one of the same family is issued. A token
    presented twice means it leaked: the whole family (that log-in) is revoked."""
    row = (
        await session.execute(
            select(RefreshToken).where(RefreshToken.token_hash == hash_token(refresh_token))
        )
    ).scalar_one_or_none()
    now = utcnow()
    if row is None or row.revoked_at is not None or row.expires_at <= now:
        raise Unauthorized("invalid or expired refresh token")
    if row.used_at is not None:
        raise Unauthorized("refresh token reuse detected: the session was revoked", reason="REUSED")
    user = await session.get(User, row.user_id)
    if user is None or user.status == UserStatus.SUSPENDED:
        raise Unauthorized("invalid or expired refresh token")
    row.used_at = now
    return await issue_session(session, settings, keys, user, client, family_id=row.family_id)


async def refresh_reuse_revocation(session: AsyncSession, refresh_token: str) -> None:
    """Revoke the family of a refresh token that was presented after it had been spent."""
    row = (
        await session.execute(
            select(RefreshToken).where(RefreshToken.token_hash == hash_token(refresh_token))
        )
    ).scalar_one_or_none()
    if row is not None:
        await revoke_family(session, row.family_id)


async def revoke_family(session: AsyncSession, family_id: uuid.UUID) -> None:
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))  # type: ignore[union-attr]
        .values(revoked_at=utcnow())
    )


async def log_out(session: AsyncSession, refresh_token: str) -> bool:
    row = (
        await session.execute(
            select(RefreshToken).where(RefreshToken.token_hash == hash_token(refresh_token))
        )
    ).scalar_one_or_none()
    if row is None:
        return False
    await revoke_family(session, row.family_id)
    return True


async def revoke_all(session: AsyncSession, user_id: uuid.UUID) -> None:
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))  # type: ignore[union-attr]
        .values(revoked_at=utcnow())
    )


async def change_password(
    session: AsyncSession, settings: Settings, user: User, *, current: str, new: str
) -> None:
    if not await verify_password(user.hashed_password, current):
        raise ValidationFailed("current password is wrong", field="currentPassword")
    check_password_strength(settings, new, field="newPassword")
    user.hashed_password = await hash_password(new)
    await revoke_all(session, user.id)


async def active_sessions(session: AsyncSession, user_id: uuid.UUID) -> int:
    query = select(func.count(func.distinct(RefreshToken.family_id))).where(
        RefreshToken.user_id == user_id,
        RefreshToken.revoked_at.is_(None),  # type: ignore[union-attr]
        RefreshToken.used_at.is_(None),  # type: ignore[union-attr]
        RefreshToken.expires_at > utcnow(),
    )
    return int((await session.execute(query)).scalar_one())
