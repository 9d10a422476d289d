"""Organizations, members, invitations, API keys and end-user tokens."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.scalars import JSON

from app.accounts import api_keys, end_user_tokens, organizations
from app.accounts.graphql.auth import current_user
from app.accounts.graphql.types import (
    ApiKeyGQL,
    ApiKeyKindEnum,
    CreatedApiKey,
    InvitationType,
    MemberType,
    OrganizationType,
    RoleEnum,
    json_map,
)
from app.accounts.models import ApiKey, ApiKeyType, Invitation, InvitationStatus, MembershipRole, User
from app.accounts.sessions import normalize_email
from app.audit import service as audit
from app.auth.policy import Action
from app.auth.principal import Developer
from app.db import UnitOfWork
from app.db.pagination import Page, encode_cursor
from app.db.types import utcnow
from app.email.outbox import queue_email
from app.errors import NotFound, ValidationFailed
from app.graphql.context import Context, Info
from app.graphql.pagination import Connection
from app.graphql.ws.fast import FastMutation


async def _actor_role(info: Info, organization_id: uuid.UUID, action: Action) -> MembershipRole:
    """Authorize a developer-only organization action and return the developer's role."""
    info.context.policy.require_developer()
    await info.context.policy.organization(organization_id, action)
    role = await info.context.policy.role_in(organization_id)
    assert role is not None
    return role


async def _manageable_key(info: Info, session: AsyncSession, api_key_id: uuid.UUID) -> ApiKey:
    """The key, if the caller may manage its organization's keys; NOT_FOUND otherwise."""
    key = await api_keys.get_in_organization(session, api_key_id)
    try:
        await info.context.policy.organization(key.organization_id, Action.KEYS_MANAGE)
    except NotFound:
        raise NotFound("api key") from None
    return key


def _actor_id(info: Info) -> uuid.UUID | None:
    principal = info.context.principal
    return principal.user_id if isinstance(principal, Developer) else None


@strawberry.input
class CreateOrganizationInput:
    name: str
    slug: str


@strawberry.input
class UpdateOrganizationInput:
    name: str | None = strawberry.UNSET
    logo_url: str | None = strawberry.UNSET
    settings: JSON | None = strawberry.UNSET
    branding: JSON | None = strawberry.UNSET


@strawberry.input
class CreateApiKeyInput:
    name: str
    kind: ApiKeyKindEnum
    scopes: list[str] | None = strawberry.field(
        default=None, description="Default: rooms:read, rooms:write, presence:read, presence:write."
    )
    expires_at: datetime | None = None
    allowed_origins: list[str] = strawberry.field(
        default_factory=list, description="Publishable keys only: browser origins allowed to use it."
    )
    rate_limit: int | None = strawberry.field(default=None, description="Requests per minute.")


@strawberry.input(description="Only the fields given change. Open connections on the key follow at once.")
class UpdateApiKeyInput:
    name: str | None = None
    scopes: list[str] | None = None
    allowed_origins: list[str] | None = strawberry.field(
        default=None, description="Publishable keys only; connections from an origin no longer allowed close."
    )
    rate_limit: int | None = strawberry.field(default=None, description="Requests per minute.")


@strawberry.input
class RoomGrantInput:
    room: str = strawberry.field(description="A room id or slug, or a slug prefix ending in *.")
    access: list[str] = strawberry.field(description="Any of read, write, presence, comment.")


@strawberry.input
class EndUserInfoInput:
    name: str | None = None
    avatar: str | None = None
    color: str | None = strawberry.field(default=None, description="#RRGGBB, e.g. for cursors.")
    extra: JSON | None = strawberry.field(default=None, description="Anything else your UI shows.")


@strawberry.input
class CreateEndUserTokenInput:
    user_id: str = strawberry.field(description="Your application's id for this user.")
    user_info: EndUserInfoInput | None = None
    permissions: list[RoomGrantInput]
    ttl_seconds: int = 3600


@strawberry.type
class EndUserToken:
    token: str
    expires_at: datetime
    end_user_id: uuid.UUID


@strawberry.type
class OrganizationsQuery:
    @strawberry.field(description="One organization you can see, by id or by slug.")
    async def organization(
        self, info: Info, id: uuid.UUID | None = None, slug: str | None = None
    ) -> OrganizationType:
        if (id is None) == (slug is None):
            raise ValidationFailed("give exactly one of id and slug", field="id")
        async with info.context.session() as session:
            org_id = id if id is not None else await organizations.id_by_slug(session, slug or "")
            await info.context.policy.organization(org_id, Action.ORG_READ)
            return OrganizationType.from_model(await organizations.get(session, org_id))

    @strawberry.field(description="The organizations you belong to (an API key sees its own), oldest first.")
    async def organizations(
        self, info: Info, first: int = 20, after: str | None = None
    ) -> Connection[OrganizationType]:
        principal = info.context.policy.require_authenticated()
        async with info.context.session() as session:
            if isinstance(principal, Developer):
                page = await organizations.list_for_user(session, principal.user_id, first=first, after=after)
                return Connection.from_page(page, OrganizationType.from_model)
            await info.context.policy.organization(principal.organization_id, Action.ORG_READ)
            org = await organizations.get(session, principal.organization_id)
        page = Page(items=[org], cursors=[encode_cursor(org.inserted_at, org.id)], has_next_page=False)
        return Connection.from_page(page, OrganizationType.from_model)


@strawberry.type
class OrganizationsMutation:
    @strawberry.mutation(description="Create an organization; you become its owner.")
    async def create_organization(self, info: Info, input: CreateOrganizationInput) -> OrganizationType:
        async with info.context.unit_of_work() as uow:
            user = await current_user(info, uow.session)
            org = await organizations.create(uow.session, user, name=input.name, slug=input.slug)
            audit.record(
                uow.session,
                "organization.created",
                principal=info.context.principal,
                organization_id=org.id,
                entity_type="organization",
                entity_id=org.id,
                changes={"slug": org.slug},
                ip_address=info.context.client.ip,
            )
        return OrganizationType.from_model(org)

    @strawberry.mutation(description="Update name, logo, settings or branding (admins and owners).")
    async def update_organization(
        self, info: Info, id: uuid.UUID, input: UpdateOrganizationInput
    ) -> OrganizationType:
        await info.context.policy.organization(id, Action.ORG_UPDATE)
        async with info.context.unit_of_work() as uow:
            org = await organizations.get(uow.session, id)
            if input.name is not strawberry.UNSET and input.name is not None:
                org.name = organizations.validate_name(input.name)
            if input.logo_url is not strawberry.UNSET:
                if input.logo_url and not input.logo_url.startswith(("https://", "http://")):
                    raise ValidationFailed("logoUrl must be an http(s) URL", field="logoUrl")
                org.logo_url = input.logo_url or None
            if input.settings is not strawberry.UNSET:
                org.settings = organizations.validate_settings(json_map(input.settings or {}, "settings"))
            if input.branding is not strawberry.UNSET:
                org.branding = organizations.validate_branding(json_map(input.branding or {}, "branding"))
        return OrganizationType.from_model(org)

    @strawberry.mutation(description="Invite someone by email; they get a link valid for 7 days.")
    async def invite_member(
        self, info: Info, organization_id: uuid.UUID, email: str, role: RoleEnum = MembershipRole.MEMBER
    ) -> InvitationType:
        actor_role = await _actor_role(info, organization_id, Action.MEMBERS_MANAGE)
        state = info.context.state
        async with info.context.unit_of_work() as uow:
            org = await organizations.get(uow.session, organization_id)
            invitation, token = await organizations.invite(
                uow.session,
                organization_id=organization_id,
                email=normalize_email(email),
                role=role,
                actor_role=actor_role,
                invited_by_id=_actor_id(info),
                ttl=timedelta(days=state.settings.invitation_ttl_days),
            )
            link = f"{state.settings.public_url}/invitations/accept?token={quote(token)}"
            await queue_email(
                uow,
                state.jobs,
                to=invitation.email,
                subject=f"You are invited to {org.name} on SyncForge",
                body=(
                    f"You have been invited to join {org.name} as {role.value}.\n\n"
                    f"Accept: {link}\n\nOr run the acceptInvitation mutation with this token:\n{token}\n\n"
                    f"The invitation expires in {state.settings.invitation_ttl_days} days."
                ),
            )
            audit.record(
                uow.session,
                "member.invited",
                principal=info.context.principal,
                organization_id=organization_id,
                entity_type="invitation",
                entity_id=invitation.id,
                changes={"email": invitation.email, "role": role.value},
                ip_address=info.context.client.ip,
            )
        return InvitationType.from_model(invitation)

    @strawberry.mutation(description="Accept an invitation sent to your email address.")
    async def accept_invitation(self, info: Info, token: str) -> MemberType:
        async with info.context.unit_of_work() as uow:
            user = await current_user(info, uow.session)
            invitation = await organizations.pending_invitation(uow.session, token)
            member = await organizations.accept(uow.session, invitation, user)
            audit.record(
                uow.session,
                "member.joined",
                principal=info.context.principal,
                organization_id=invitation.organization_id,
                entity_type="membership",
                entity_id=member.id,
                changes={"role": member.role.value},
            )
        return MemberType.from_models(member, user)

    @strawberry.mutation(description="Decline an invitation (no account needed: the token is enough).")
    async def decline_invitation(self, info: Info, token: str) -> bool:
        async with info.context.unit_of_work() as uow:
            invitation = await organizations.pending_invitation(uow.session, token)
            invitation.status, invitation.declined_at = InvitationStatus.DECLINED, utcnow()
        return True

    @strawberry.mutation(description="Withdraw a pending invitation (admins and owners).")
    async def revoke_invitation(self, info: Info, id: uuid.UUID) -> InvitationType:
        async with info.context.unit_of_work() as uow:
            invitation = await uow.session.get(Invitation, id)
            if invitation is None:
                raise NotFound("invitation")
            await info.context.policy.organization(invitation.organization_id, Action.MEMBERS_MANAGE)
            if invitation.status == InvitationStatus.PENDING:
                invitation.status, invitation.revoked_at = InvitationStatus.REVOKED, utcnow()
                audit.record(
                    uow.session,
                    "member.invitation_revoked",
                    principal=info.context.principal,
                    organization_id=invitation.organization_id,
                    entity_type="invitation",
                    entity_id=id,
                )
        return InvitationType.from_model(invitation)

    @strawberry.mutation(description="Change a member's role. The last owner cannot be demoted.")
    async def change_member_role(
        self, info: Info, organization_id: uuid.UUID, user_id: uuid.UUID, role: RoleEnum
    ) -> MemberType:
        actor_role = await _actor_role(info, organization_id, Action.MEMBERS_MANAGE)
        async with info.context.unit_of_work() as uow:
            target = await organizations.membership(uow.session, organization_id, user_id)
            before = target.role
            await organizations.change_role(uow.session, actor_role, target, role)
            _announce_member_change(info, uow, user_id)
            audit.record(
                uow.session,
                "member.role_changed",
                principal=info.context.principal,
                organization_id=organization_id,
                entity_type="membership",
                entity_id=target.id,
                changes={"user_id": str(user_id), "from": before.value, "to": role.value},
            )
            user = await uow.session.get(User, user_id)
        assert user is not None
        return MemberType.from_models(target, user)

    @strawberry.mutation(description="Remove a member. The last owner cannot be removed.")
    async def remove_member(self, info: Info, organization_id: uuid.UUID, user_id: uuid.UUID) -> bool:
        actor_role = await _actor_role(info, organization_id, Action.MEMBERS_MANAGE)
        async with info.context.unit_of_work() as uow:
            target = await organizations.membership(uow.session, organization_id, user_id)
            await organizations.remove(uow.session, actor_role, target)
            _announce_member_change(info, uow, user_id)
            audit.record(
                uow.session,
                "member.removed",
                principal=info.context.principal,
                organization_id=organization_id,
                entity_type="membership",
                entity_id=target.id,
                changes={"user_id": str(user_id), "role": target.role.value},
            )
        return True

    @strawberry.mutation(description="Leave an organization. The last owner cannot leave.")
    async def leave_organization(self, info: Info, organization_id: uuid.UUID) -> bool:
        developer = info.context.policy.require_developer()
        await info.context.policy.organization(organization_id, Action.ORG_READ)
        async with info.context.unit_of_work() as uow:
            target = await organizations.membership(uow.session, organization_id, developer.user_id)
            await organizations.remove(uow.session, None, target)
            _announce_member_change(info, uow, developer.user_id)
            audit.record(
                uow.session,
                "member.left",
                principal=info.context.principal,
                organization_id=organization_id,
                entity_type="membership",
                entity_id=target.id,
            )
        return True

    @strawberry.mutation(description="Create an API key. The full key is returned only here.")
    async def create_api_key(
        self, info: Info, organization_id: uuid.UUID, input: CreateApiKeyInput
    ) -> CreatedApiKey:
        await info.context.policy.organization(organization_id, Action.KEYS_MANAGE)
        if input.allowed_origins and input.kind != ApiKeyType.PUBLISHABLE:
            raise ValidationFailed("allowedOrigins applies to publishable keys", field="allowedOrigins")
        state = info.context.state
        async with info.context.unit_of_work() as uow:
            issued = await api_keys.issue(
                uow.session,
                organization_id=organization_id,
                name=input.name,
                key_type=input.kind,
                scopes=input.scopes,
                expires_at=input.expires_at,
                allowed_origins=input.allowed_origins,
                rate_limit=input.rate_limit,
                created_by_id=_actor_id(info),
                default_rate_limit=state.settings.api_key_rate_limit_default,
            )
            created = {"name": issued.api_key.name, "kind": input.kind.value, "scopes": issued.api_key.scopes}
            _audit_key(info, uow.session, "api_key.created", issued.api_key, changes=created)
        return CreatedApiKey(api_key=ApiKeyGQL.from_model(issued.api_key), secret=issued.secret)

    @strawberry.mutation(
        description="Change an API key's name, scopes, allowed origins or rate limit. Connections "
        "open on it take the new settings at once: streams a narrowed scope no longer allows end."
    )
    async def update_api_key(self, info: Info, id: uuid.UUID, input: UpdateApiKeyInput) -> ApiKeyGQL:
        async with info.context.unit_of_work() as uow:
            key = await _manageable_key(info, uow.session, id)
            changed = api_keys.update(
                key,
                name=input.name,
                scopes=input.scopes,
                allowed_origins=input.allowed_origins,
                rate_limit=input.rate_limit,
            )
            if changed:
                _forget_key_after_commit(info, uow, key.id)
                _audit_key(info, uow.session, "api_key.updated", key, changes=changed)
        return ApiKeyGQL.from_model(key)

    @strawberry.mutation(description="Revoke an API key; it stops working at once.")
    async def revoke_api_key(self, info: Info, id: uuid.UUID) -> ApiKeyGQL:
        async with info.context.unit_of_work() as uow:
            key = await _manageable_key(info, uow.session, id)
            api_keys.revoke(key, _actor_id(info))
            _forget_key_after_commit(info, uow, key.id)
            _audit_key(info, uow.session, "api_key.revoked", key)
        return ApiKeyGQL.from_model(key)

    @strawberry.mutation(description="Revoke a key and issue a replacement with the same settings.")
    async def rotate_api_key(self, info: Info, id: uuid.UUID) -> CreatedApiKey:
        async with info.context.unit_of_work() as uow:
            key = await _manageable_key(info, uow.session, id)
            issued = await api_keys.rotate(uow.session, key, _actor_id(info))
            _forget_key_after_commit(info, uow, key.id)
            _audit_key(
                info, uow.session, "api_key.rotated", key, changes={"replacement_id": str(issued.api_key.id)}
            )
        return CreatedApiKey(api_key=ApiKeyGQL.from_model(issued.api_key), secret=issued.secret)

    @strawberry.mutation(
        description="Mint a short-lived token for one of your users (secret keys only). Browsers "
        "connect with your publishable key plus this token."
    )
    async def create_end_user_token(self, info: Info, input: CreateEndUserTokenInput) -> EndUserToken:
        user_info = input.user_info
        arguments = {
            "userId": input.user_id,
            "userInfo": None
            if user_info is None
            else {
                "name": user_info.name,
                "avatar": user_info.avatar,
                "color": user_info.color,
                "extra": user_info.extra,
            },
            "permissions": [{"room": g.room, "access": g.access} for g in input.permissions],
            "ttlSeconds": input.ttl_seconds,
        }
        return await create_end_user_token(info.context, {"input": arguments})


async def create_end_user_token(context: Context, arguments: dict[str, Any]) -> EndUserToken:
    """createEndUserToken, with its arguments by GraphQL name: the resolver calls it, and so do
    the HTTP and WebSocket fast paths (a backend mints a token per page load of each user)."""
    data = arguments["input"]
    principal = context.policy.require_secret_key()
    await context.policy.organization(principal.organization_id, Action.END_USER_TOKENS_CREATE)
    grants = end_user_tokens.parse_grants([(g["room"], g["access"]) for g in data["permissions"]])
    user_info = data.get("userInfo") or {}
    state = context.state
    request = end_user_tokens.TokenRequest(
        organization_id=principal.organization_id,
        api_key_id=principal.api_key_id,
        external_id=data["userId"],
        name=user_info.get("name"),
        avatar_url=user_info.get("avatar"),
        color=user_info.get("color"),
        info=json_map(user_info.get("extra") or {}, "userInfo.extra"),
        grants=grants,
        ttl_s=data["ttlSeconds"],
    )
    max_ttl_s = state.settings.end_user_token_max_ttl_s
    request.check(max_ttl_s)
    profile = request.profile
    known = state.known_end_users.recent(request.organization_id, request.external_id, profile)
    if known is not None:  # the common case: the same user's next page load
        minted = end_user_tokens.sign(state.keys, request, known)
    else:
        async with context.unit_of_work() as uow:
            minted = await end_user_tokens.mint(uow.session, state.keys, request, max_ttl_s=max_ttl_s)
        state.known_end_users.remember(
            request.organization_id, request.external_id, profile, minted.end_user_id
        )
    return EndUserToken(token=minted.token, expires_at=minted.expires_at, end_user_id=minted.end_user_id)


FAST_FIELDS = (FastMutation("createEndUserToken", create_end_user_token, http=True),)


def _announce_member_change(info: Info, uow: UnitOfWork, user_id: uuid.UUID) -> None:
    """Once committed, every process asks again what this developer's open connections may do."""
    changes = info.context.state.member_changes
    uow.on_commit(lambda: changes.announce(user_id))


def _audit_key(info: Info, session: AsyncSession, action: str, key: ApiKey, **details: Any) -> None:
    audit.record(
        session,
        action,
        principal=info.context.principal,
        organization_id=key.organization_id,
        entity_type="api_key",
        entity_id=key.id,
        ip_address=info.context.client.ip,
        **details,
    )


def _forget_key_after_commit(info: Info, uow: UnitOfWork, key_id: uuid.UUID) -> None:
    """Every process's key cache forgets the key once its change is committed (and connections
    on it are closed or take its new settings)."""
    uow.on_commit(lambda: info.context.state.authenticator.key_cache.changed(key_id))
