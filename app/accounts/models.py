"""Accounts: organizations (tenants), users, memberships, API keys and invitations."""

import enum
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlmodel import Field, Relationship

from app.db.base import Timestamped, UUIDModel
from app.db.types import enum_field, fk_field, json_field, timestamp_field

if TYPE_CHECKING:
    from app.rooms.models import Room
    from app.webhooks.models import Webhook


class OrganizationPlan(enum.StrEnum):
    FREE = "free"
    STARTER = "starter"
    PRO = "pro"
    BUSINESS = "business"
    ENTERPRISE = "enterprise"


class UserStatus(enum.StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    PENDING_VERIFICATION = "pending_verification"


class MembershipRole(enum.StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    MEMBER = "member"
    VIEWER = "viewer"


class MembershipStatus(enum.StrEnum):
    ACTIVE = "active"
    INVITED = "invited"
    SUSPENDED = "suspended"


class ApiKeyType(enum.StrEnum):
    PUBLISHABLE = "publishable"
    SECRET = "secret"


class ApiKeyStatus(enum.StrEnum):
    ACTIVE = "active"
    REVOKED = "revoked"
    EXPIRED = "expired"


class InvitationStatus(enum.StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    REVOKED = "revoked"
    EXPIRED = "expired"


DEFAULT_API_KEY_SCOPES: tuple[str, ...] = (
    "rooms:read",
    "rooms:write",
    "presence:read",
    "presence:write",
)


class Organization(UUIDModel, Timestamped, table=True):
    """Multi-tenant workspace containing all collaboration resources."""

    __tablename__ = "organizations"
    __table_args__ = (
        sa.UniqueConstraint("slug"),
        sa.Index("idx_organizations_slug", "slug"),
        sa.Index("idx_organizations_plan", "plan"),
    )

    name: str
    slug: str
    logo_url: str | None = None

    # Subscription and limits
    plan: OrganizationPlan = enum_field(OrganizationPlan, OrganizationPlan.FREE)
    max_rooms: int = 5
    max_monthly_connections: int = 1000
    max_concurrent_users: int = 10

    # Usage tracking
    current_month_connections: int = 0
    usage_reset_at: datetime | None = timestamp_field()

    # Billing
    stripe_customer_id: str | None = None
    stripe_subscription_id: str | None = None

    # Configurable settings and branding (FR-2.6): free-form maps validated by the service.
    settings: dict[str, Any] = json_field()
    branding: dict[str, Any] = json_field()

    memberships: list["Membership"] = Relationship(
        back_populates="organization",
        cascade_delete=True,
        passive_deletes=True,
        sa_relationship_kwargs={"lazy": "raise"},
    )
    rooms: list["Room"] = Relationship(
        back_populates="organization",
        cascade_delete=True,
        passive_deletes=True,
        sa_relationship_kwargs={"lazy": "raise"},
    )
    api_keys: list["ApiKey"] = Relationship(
        back_populates="organization",
        cascade_delete=True,
        passive_deletes=True,
        sa_relationship_kwargs={"lazy": "raise"},
    )
    webhooks: list["Webhook"] = Relationship(
        back_populates="organization",
        cascade_delete=True,
        passive_deletes=True,
        sa_relationship_kwargs={"lazy": "raise"},
    )
    invitations: list["Invitation"] = Relationship(
        back_populates="organization",
        cascade_delete=True,
        passive_deletes=True,
        sa_relationship_kwargs={"lazy": "raise"},
    )


class User(UUIDModel, Timestamped, table=True):
    """Individual user account."""

    __tablename__ = "users"
    __table_args__ = (
        sa.UniqueConstraint("email"),
        # One SyncForge account per provider account (NULLs do not collide).
        sa.UniqueConstraint("google_id"),
        sa.UniqueConstraint("github_id"),
        sa.Index("idx_users_email", "email"),
        sa.Index("idx_users_status", "status"),
    )

    email: str
    name: str | None = None
    avatar_url: str | None = None
    hashed_password: str | None = None  # password hash, never the password

    # OAuth
    google_id: str | None = None
    github_id: str | None = None

    status: UserStatus = enum_field(UserStatus, UserStatus.PENDING_VERIFICATION)
    email_verified_at: datetime | None = timestamp_field()
    preferences: dict[str, Any] = json_field()

    # MFA (TOTP): the secret is encrypted with the deployment key; the last accepted time step
    # is kept so that a code cannot be used twice.
    totp_secret_encrypted: str | None = None
    mfa_enabled_at: datetime | None = timestamp_field()
    totp_last_step: int | None = Field(default=None, sa_type=sa.BigInteger)

    memberships: list["Membership"] = Relationship(
        back_populates="user",
        cascade_delete=True,
        passive_deletes=True,
        sa_relationship_kwargs={"lazy": "raise", "foreign_keys": "[Membership.user_id]"},
    )


class Membership(UUIDModel, Timestamped, table=True):
    """Joins a user to an organization with a role."""

    __tablename__ = "memberships"
    __table_args__ = (
        sa.UniqueConstraint("organization_id", "user_id"),
        sa.Index("idx_memberships_user_id", "user_id"),
        sa.Index("idx_memberships_org_id", "organization_id"),
    )

    role: MembershipRole = enum_field(MembershipRole, MembershipRole.MEMBER)
    status: MembershipStatus = enum_field(MembershipStatus, MembershipStatus.INVITED)
    invited_at: datetime | None = timestamp_field()
    accepted_at: datetime | None = timestamp_field()

    organization_id: uuid.UUID = fk_field("organizations.id")
    user_id: uuid.UUID = fk_field("users.id")
    invited_by_id: uuid.UUID | None = fk_field("users.id", nullable=True)

    organization: "Organization" = Relationship(
        back_populates="memberships", sa_relationship_kwargs={"lazy": "raise"}
    )
    user: "User" = Relationship(
        back_populates="memberships",
        sa_relationship_kwargs={"lazy": "raise", "foreign_keys": "[Membership.user_id]"},
    )


class ApiKey(UUIDModel, Timestamped, table=True):
    """SDK authentication for client applications."""

    __tablename__ = "api_keys"
    __table_args__ = (
        sa.Index("idx_api_keys_org_id", "organization_id"),
        sa.Index("idx_api_keys_prefix", "key_prefix"),
    )

    name: str
    key_prefix: str  # first characters of the key, for identification
    key_hash: str  # hash of the full key; the key itself is shown once
    type: ApiKeyType = enum_field(ApiKeyType, ApiKeyType.PUBLISHABLE)
    scopes: list[str] = json_field(lambda: list(DEFAULT_API_KEY_SCOPES))
    rate_limit: int = 1000  # requests per minute

    status: ApiKeyStatus = enum_field(ApiKeyStatus, ApiKeyStatus.ACTIVE)
    expires_at: datetime | None = timestamp_field()
    revoked_at: datetime | None = timestamp_field()

    # Usage tracking
    last_used_at: datetime | None = timestamp_field()
    usage_count: int = Field(default=0, sa_type=sa.BigInteger)

    allowed_origins: list[str] = json_field(list)  # CORS origins

    organization_id: uuid.UUID = fk_field("organizations.id")
    created_by_id: uuid.UUID | None = fk_field("users.id", nullable=True)
    revoked_by_id: uuid.UUID | None = fk_field("users.id", nullable=True)

    organization: "Organization" = Relationship(
        back_populates="api_keys", sa_relationship_kwargs={"lazy": "raise"}
    )


class Invitation(UUIDModel, Timestamped, table=True):
    """An emailed invitation to join an organization; at most one pending per email."""

    __tablename__ = "invitations"
    __table_args__ = (
        sa.UniqueConstraint("token_hash"),
        sa.Index("idx_invitations_org_id", "organization_id"),
        sa.Index("idx_invitations_email", "email"),
        sa.Index(
            "uq_invitations_pending_email",
            "organization_id",
            "email",
            unique=True,
            postgresql_where=sa.text("status = 'pending'"),
            sqlite_where=sa.text("status = 'pending'"),
        ),
    )

    email: str
    role: MembershipRole = enum_field(MembershipRole, MembershipRole.MEMBER)
    token_hash: str  # hash of the emailed token, never the token
    expires_at: datetime = timestamp_field(nullable=False)
    status: InvitationStatus = enum_field(InvitationStatus, InvitationStatus.PENDING)
    accepted_at: datetime | None = timestamp_field()
    declined_at: datetime | None = timestamp_field()
    revoked_at: datetime | None = timestamp_field()

    organization_id: uuid.UUID = fk_field("organizations.id")
    invited_by_id: uuid.UUID | None = fk_field("users.id", nullable=True)

    organization: "Organization" = Relationship(
        back_populates="invitations", sa_relationship_kwargs={"lazy": "raise"}
    )


# Register the tables that relationships above name, whichever models module is imported first.
import app.models  # noqa: E402, F401
