"""`syncforge dev-keys`: a development organization and the keys an app under development uses.

It finds the organization (slug `dev` unless told otherwise) or creates it, owned by a developer
account (dev@syncforge.local, with a generated password shown once) that can log in to GraphiQL,
and answers its publishable and secret keys.

Keys are stored hashed, so "print the keys" needs a way to show a key again. These are derived
from the deployment's secret key (derived_keys.py) rather than created anew on every run or kept
encrypted: every run prints the same keys, so an `.env` written once stays valid, no readable
copy of a secret key sits in the database, and no key piles up per run. Revoking one
(`revokeApiKey` in GraphiQL) is how to get a new one: the next run prints its next generation.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.accounts import organizations, sessions
from app.accounts.models import ApiKeyType, MembershipRole, Organization, User, UserStatus
from app.auth.policy import API_KEY_SCOPES, DEFAULT_KEY_SCOPES
from app.db import UnitOfWork
from app.db.types import utcnow
from app.demo import derived_keys
from app.security.keys import Keys
from app.security.passwords import hash_password
from app.settings import Settings

DEFAULT_SLUG = "dev"
ORGANIZATION_NAME = "Development"
ACCOUNT_EMAIL = "dev@syncforge.local"
ACCOUNT_NAME = "Development account"
PUBLIC_KEY = ("dev-keys:publishable", "dev-keys publishable key")  # (purpose, name)
SECRET_KEY = ("dev-keys:secret", "dev-keys secret key")
# The publishable key may do what a browser with an end-user token does; the secret key
# everything a backend may, so that every feature can be tried (webhooks, billing, inbox).
PUBLIC_SCOPES = list(DEFAULT_KEY_SCOPES)
SECRET_SCOPES = list(API_KEY_SCOPES)


@dataclass(frozen=True)
class CreatedAccount:
    email: str
    password: str = field(repr=False)  # shown once, never stored (only its hash is)


@dataclass(frozen=True)
class DevKeys:
    organization_id: uuid.UUID
    organization_slug: str
    organization_name: str
    owners: list[str]  # the emails of the organization's owners
    public_api_key: str = field(repr=False)
    secret_api_key: str = field(repr=False)
    created_account: CreatedAccount | None = None  # the account this run created, if any


async def ensure_dev_keys(
    session_factory: async_sessionmaker[AsyncSession], keys: Keys, settings: Settings, *, slug: str
) -> DevKeys:
    """Find or create the organization and its keys; commits."""
    slug = organizations.validate_slug(slug)
    async with UnitOfWork(session_factory) as uow:
        session = uow.session
        found = (
            await session.execute(select(Organization).where(Organization.slug == slug))
        ).scalar_one_or_none()
        created: CreatedAccount | None = None
        if found is None:
            owner, created = await _account(session, settings)
            found = await organizations.create(session, owner, name=ORGANIZATION_NAME, slug=slug)
        issued = {}
        for key_type, (purpose, name), scopes in (
            (ApiKeyType.PUBLISHABLE, PUBLIC_KEY, PUBLIC_SCOPES),
            (ApiKeyType.SECRET, SECRET_KEY, SECRET_SCOPES),
        ):
            _, issued[key_type] = await derived_keys.ensure(
                session,
                keys,
                purpose=purpose,
                organization_id=found.id,
                key_type=key_type,
                name=name,
                scopes=scopes,
                rate_limit=settings.api_key_rate_limit_default,
            )
        owners = [
            user.email
            for membership, user in await organizations.list_members(session, found.id)
            if membership.role == MembershipRole.OWNER
        ]
    return DevKeys(
        organization_id=found.id,
        organization_slug=found.slug,
        organization_name=found.name,
        owners=owners,
        public_api_key=issued[ApiKeyType.PUBLISHABLE],
        secret_api_key=issued[ApiKeyType.SECRET],
        created_account=created,
    )


async def _account(session: AsyncSession, settings: Settings) -> tuple[User, CreatedAccount | None]:
    """The development account (and its password, when it is created now). Its email is not a
    real mailbox, so it is created verified."""
    existing = await sessions.find_user_by_email(session, ACCOUNT_EMAIL)
    if existing is not None:
        return existing, None
    password = secrets.token_urlsafe(max(15, settings.password_min_length))
    user = User(
        email=ACCOUNT_EMAIL,
        name=ACCOUNT_NAME,
        hashed_password=await hash_password(password),
        status=UserStatus.ACTIVE,
        email_verified_at=utcnow(),
    )
    session.add(user)
    await session.flush()
    return user, CreatedAccount(email=ACCOUNT_EMAIL, password=password)
