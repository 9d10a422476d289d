"""Credentials of developer accounts: sessions, single-use tokens, MFA recovery codes, OAuth state.

Every secret here is stored as a SHA-256 hash of a high-entropy random token (or encrypted, where
the server must read it back), never as the token itself.
"""

import enum
import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field

from app.db.base import UUIDModel
from app.db.types import enum_field, fk_field, timestamp_field


class RefreshToken(UUIDModel, table=True):
    """One rotating refresh token of a session; a family is one log-in, rotated on each use."""

    __tablename__ = "refresh_tokens"
    __table_args__ = (
        sa.UniqueConstraint("token_hash"),
        sa.Index("idx_refresh_tokens_user_id", "user_id"),
        sa.Index("idx_refresh_tokens_family_id", "family_id"),
    )

    user_id: uuid.UUID = fk_field("users.id")
    family_id: uuid.UUID
    token_hash: str
    expires_at: datetime = timestamp_field(nullable=False)
    created_at: datetime = timestamp_field(nullable=False, now=True)
    used_at: datetime | None = timestamp_field()
    revoked_at: datetime | None = timestamp_field()
    user_agent: str | None = None
    ip_address: str | None = None


class UserTokenPurpose(enum.StrEnum):
    VERIFY_EMAIL = "verify_email"
    RESET_PASSWORD = "reset_password"


class UserToken(UUIDModel, table=True):
    """A single-use, expiring token sent by email (verification, password reset)."""

    __tablename__ = "user_tokens"
    __table_args__ = (
        sa.UniqueConstraint("token_hash"),
        sa.Index("idx_user_tokens_user_purpose", "user_id", "purpose"),
    )

    user_id: uuid.UUID = fk_field("users.id")
    purpose: UserTokenPurpose = enum_field(UserTokenPurpose)
    token_hash: str
    expires_at: datetime = timestamp_field(nullable=False)
    used_at: datetime | None = timestamp_field()
    created_at: datetime = timestamp_field(nullable=False, now=True)


class RecoveryCode(UUIDModel, table=True):
    """An MFA recovery code (hashed), usable once."""

    __tablename__ = "mfa_recovery_codes"
    __table_args__ = (sa.Index("idx_mfa_recovery_codes_user_id", "user_id"),)

    user_id: uuid.UUID = fk_field("users.id")
    code_hash: str
    used_at: datetime | None = timestamp_field()
    created_at: datetime = timestamp_field(nullable=False, now=True)


class OAuthState(UUIDModel, table=True):
    """The state and PKCE verifier of one OAuth authorization-code flow, until its callback."""

    __tablename__ = "oauth_states"
    __table_args__ = (sa.UniqueConstraint("state_hash"),)

    provider: str
    state_hash: str
    code_verifier_encrypted: str
    redirect_uri: str
    expires_at: datetime = timestamp_field(nullable=False)
    consumed_at: datetime | None = timestamp_field()
    created_at: datetime = timestamp_field(nullable=False, now=True)


class EmailMessage(UUIDModel, table=True):
    """Every email the service sends. In the embedded default this is the mailbox developers read
    (`syncforge mailbox`); with SMTP configured it records what was delivered."""

    __tablename__ = "email_messages"
    __table_args__ = (sa.Index("idx_email_messages_created", "created_at"),)

    to_address: str
    subject: str
    body_text: str = Field(sa_type=sa.Text)
    status: str = "queued"  # queued | sent | stored | failed
    error: str | None = None
    created_at: datetime = timestamp_field(nullable=False, now=True)
    sent_at: datetime | None = timestamp_field()
