"""Organizations, memberships and invitations."""

from __future__ import annotations

import json
import re
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.models import (
    ApiKey,
    Invitation,
    InvitationStatus,
    Membership,
    MembershipRole,
    MembershipStatus,
    Organization,
    User,
)
from app.db.pagination import Page, paginate
from app.db.types import utcnow
from app.db.unique import flush_unique
from app.errors import Conflict, Forbidden, NotFound, ValidationFailed
from app.security.tokens import hash_token, new_token

_SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
BRANDING_KEYS = {"primaryColor", "accentColor", "logoUrl", "faviconUrl", "displayName"}
MAX_SETTINGS_BYTES = 16_384
SLUG_TAKEN = "this slug is taken"


def validate_slug(slug: str, field: str = "slug") -> str:
    slug = slug.strip().lower()
    if not _SLUG.match(slug):
        raise ValidationFailed(
            "slug must be 1-63 lowercase letters, digits or hyphens, not starting or ending with a hyphen",
            field=field,
        )
    return slug


def validate_name(name: str) -> str:
    name = name.strip()
    if not 1 <= len(name) <= 100:
        raise ValidationFailed("name must be 1 to 100 characters", field="name")
    return name


def validate_settings(value: dict[str, Any]) -> dict[str, Any]:
    if len(json.dumps(value)) > MAX_SETTINGS_BYTES:
        raise ValidationFailed(f"settings must be at most {MAX_SETTINGS_BYTES} bytes", field="settings")
    return value


def validate_branding(value: dict[str, Any]) -> dict[str, Any]:
    unknown = set(value) - BRANDING_KEYS
    if unknown:
        raise ValidationFailed(
            f"unknown branding keys {sorted(unknown)}; allowed: {sorted(BRANDING_KEYS)}", field="branding"
        )
    for key, item in value.items():
        if item is not None and (not isinstance(item, str) or len(item) > 500):
            raise ValidationFailed(f"branding.{key} must be a string", field="branding")
    return value


async def create(session: AsyncSession, owner: User, *, name: str, slug: str) -> Organization:
    slug = validate_slug(slug)
    if (await session.execute(select(Organization.id).where(Organization.slug == slug))).first():
        raise Conflict(SLUG_TAKEN, field="slug")
    org = Organization(name=validate_name(name), slug=slug)
    session.add(org)
    await flush_unique(session, SLUG_TAKEN)  # a concurrent create may have taken it since our check
    session.add(
        Membership(
            organization_id=org.id,
            user_id=owner.id,
            role=MembershipRole.OWNER,
            status=MembershipStatus.ACTIVE,
            accepted_at=utcnow(),
        )
    )
    await session.flush()
    return org


async def get(session: AsyncSession, organization_id: uuid.UUID) -> Organization:
    org = await session.get(Organization, organization_id)
    if org is None:
        raise NotFound("organization")
    return org


async def id_by_slug(session: AsyncSession, slug: str) -> uuid.UUID:
    found = (await session.execute(select(Organization.id).where(Organization.slug == slug))).scalar()
    if found is None:
        raise NotFound("organization")
    return found


async def list_for_user(
    session: AsyncSession, user_id: uuid.UUID, *, first: int, after: str | None
) -> Page[Organization]:
    query = select(Organization).where(
        Organization.id.in_(  # type: ignore[attr-defined]
            select(Membership.organization_id).where(
                Membership.user_id == user_id, Membership.status == MembershipStatus.ACTIVE
            )
        )
    )
    return await paginate(session, query, Organization, first=first, after=after)


async def list_members(session: AsyncSession, organization_id: uuid.UUID) -> list[tuple[Membership, User]]:
    rows = await session.execute(
        select(Membership, User)
        .join(User, User.id == Membership.user_id)
        .where(Membership.organization_id == organization_id, Membership.status == MembershipStatus.ACTIVE)
        .order_by(Membership.inserted_at, Membership.id)
    )
    return [(m, u) for m, u in rows.all()]


async def list_pending_invitations(session: AsyncSession, organization_id: uuid.UUID) -> list[Invitation]:
    rows = await session.execute(
        select(Invitation)
        .where(Invitation.organization_id == organization_id, Invitation.status == InvitationStatus.PENDING)
        .order_by(Invitation.inserted_at)
    )
    return list(rows.scalars())


async def list_api_keys(session: AsyncSession, organization_id: uuid.UUID) -> list[ApiKey]:
    rows = await session.execute(
        select(ApiKey).where(ApiKey.organization_id == organization_id).order_by(ApiKey.inserted_at)
    )
    return list(rows.scalars())


async def membership(session: AsyncSession, organization_id: uuid.UUID, user_id: uuid.UUID) -> Membership:
    found = (
        await session.execute(
            select(Membership).where(
                Membership.organization_id == organization_id,
                Membership.user_id == user_id,
                Membership.status == MembershipStatus.ACTIVE,
            )
        )
    ).scalar_one_or_none()
    if found is None:
        raise NotFound("member")
    return found


async def _owner_count(session: AsyncSession, organization_id: uuid.UUID) -> int:
    query = select(func.count()).where(
        Membership.organization_id == organization_id,
        Membership.role == MembershipRole.OWNER,
        Membership.status == MembershipStatus.ACTIVE,
    )
    return int((await session.execute(query)).scalar_one())


async def _guard_last_owner(session: AsyncSession, target: Membership) -> None:
    if target.role == MembershipRole.OWNER and await _owner_count(session, target.organization_id) <= 1:
        raise Conflict("an organization must keep at least one owner", reason="LAST_OWNER")


def _guard_owner_changes(
    actor_role: MembershipRole, target_role: MembershipRole, new_role: MembershipRole | None
) -> None:
    # Only owners grant, change or remove the owner role.
    if actor_role != MembershipRole.OWNER and MembershipRole.OWNER in (target_role, new_role):
        raise Forbidden("only owners can change owners or make new ones")


async def change_role(
    session: AsyncSession, actor_role: MembershipRole, target: Membership, role: MembershipRole
) -> Membership:
    _guard_owner_changes(actor_role, target.role, role)
    if target.role == MembershipRole.OWNER and role != MembershipRole.OWNER:
        await _guard_last_owner(session, target)
    target.role = role
    return target


async def remove(session: AsyncSession, actor_role: MembershipRole | None, target: Membership) -> None:
    """Remove a member (actor_role None: the member leaves on their own)."""
    if actor_role is not None:
        _guard_owner_changes(actor_role, target.role, None)
    await _guard_last_owner(session, target)
    await session.delete(target)


async def invite(
    session: AsyncSession,
    *,
    organization_id: uuid.UUID,
    email: str,
    role: MembershipRole,
    actor_role: MembershipRole,
    invited_by_id: uuid.UUID | None,
    ttl: timedelta,
) -> tuple[Invitation, str]:
    _guard_owner_changes(actor_role, MembershipRole.MEMBER, role)
    existing_member = await session.execute(
        select(Membership.id)
        .join(User, User.id == Membership.user_id)
        .where(
            Membership.organization_id == organization_id,
            User.email == email,
            Membership.status == MembershipStatus.ACTIVE,
        )
    )
    if existing_member.first():
        raise Conflict("this person is already a member", field="email")
    for pending in (
        await session.execute(
            select(Invitation).where(
                Invitation.organization_id == organization_id,
                Invitation.email == email,
                Invitation.status == InvitationStatus.PENDING,
            )
        )
    ).scalars():
        pending.status, pending.revoked_at = InvitationStatus.REVOKED, utcnow()  # a new one replaces it
    await session.flush()
    token = new_token()
    invitation = Invitation(
        organization_id=organization_id,
        email=email,
        role=role,
        token_hash=hash_token(token),
        expires_at=utcnow() + ttl,
        invited_by_id=invited_by_id,
    )
    session.add(invitation)
    await session.flush()
    return invitation, token


async def pending_invitation(session: AsyncSession, token: str) -> Invitation:
    invitation = (
        await session.execute(select(Invitation).where(Invitation.token_hash == hash_token(token)))
    ).scalar_one_or_none()
    if invitation is None or invitation.status != InvitationStatus.PENDING:
        raise NotFound("invitation")
    if invitation.expires_at <= utcnow():
        invitation.status = InvitationStatus.EXPIRED
        raise NotFound("invitation", reason="EXPIRED")
    return invitation


async def accept(session: AsyncSession, invitation: Invitation, user: User) -> Membership:
    if user.email != invitation.email:
        raise Forbidden("this invitation was sent to another email address")
    existing = (
        await session.execute(
            select(Membership).where(
                Membership.organization_id == invitation.organization_id, Membership.user_id == user.id
            )
        )
    ).scalar_one_or_none()
    member = existing or Membership(organization_id=invitation.organization_id, user_id=user.id)
    member.role, member.status = invitation.role, MembershipStatus.ACTIVE
    member.invited_by_id, member.invited_at = invitation.invited_by_id, invitation.inserted_at
    member.accepted_at = utcnow()
    session.add(member)
    invitation.status, invitation.accepted_at = InvitationStatus.ACCEPTED, utcnow()
    await session.flush()
    return member
