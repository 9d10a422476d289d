"""Organizations, members, roles and invitations (FR-2)."""

from __future__ import annotations

import re

from sqlalchemy import select, update

from app.accounts.credentials_models import EmailMessage
from app.accounts.models import Invitation
from app.audit.models import AuditLog
from app.db.types import utcnow
from tests.gql import GQL, create_org, sign_up

MEMBERS = "query($id: UUID) { organization(id: $id) { members { user { id email } role } } }"
INVITE = """mutation($org: UUID!, $email: String!, $role: MemberRole!) {
  inviteMember(organizationId: $org, email: $email, role: $role) { id email role status expiresAt } }"""
ACCEPT = "mutation($t: String!) { acceptInvitation(token: $t) { role user { id } } }"
CHANGE_ROLE = """mutation($org: UUID!, $user: UUID!, $role: MemberRole!) {
  changeMemberRole(organizationId: $org, userId: $user, role: $role) { role } }"""
REMOVE = "mutation($org: UUID!, $user: UUID!) { removeMember(organizationId: $org, userId: $user) }"


async def _invitation_token(session_factory, email: str) -> str:  # type: ignore[no-untyped-def]
    async with session_factory() as session:
        bodies = (
            await session.execute(
                select(EmailMessage.body_text)
                .where(EmailMessage.to_address == email, EmailMessage.subject.contains("invited"))
                .order_by(EmailMessage.created_at.desc())
            )
        ).scalars()
        body = next(iter(bodies))
    match = re.search(r"token=([\w%-]+)", body)
    assert match, body
    return match.group(1)


async def test_create_update_and_list_organizations(anon: GQL) -> None:
    owner = await sign_up(anon)
    org_id = await create_org(owner, slug="acme-inc")
    dup = await owner.gql.error(
        'mutation { createOrganization(input: {name: "X", slug: "acme-inc"}) { id } }'
    )
    assert dup["extensions"]["code"] == "CONFLICT" and dup["extensions"]["field"] == "slug"
    bad = await owner.gql.error('mutation { createOrganization(input: {name: "X", slug: "Not OK!"}) { id } }')
    assert bad["extensions"]["field"] == "slug"

    updated = await owner.gql.data(
        """mutation($id: UUID!) { updateOrganization(id: $id, input: {name: "Acme",
             settings: {defaultRoomTtl: 30}, branding: {primaryColor: "#ff0000"}}) {
             name settings branding } }""",
        id=org_id,
    )
    assert updated["updateOrganization"] == {
        "name": "Acme",
        "settings": {"defaultRoomTtl": 30},
        "branding": {"primaryColor": "#ff0000"},
    }
    wrong_branding = await owner.gql.error(
        'mutation($id: UUID!) { updateOrganization(id: $id, input: {branding: {font: "x"}}) { id } }',
        id=org_id,
    )
    assert wrong_branding["extensions"]["field"] == "branding"
    by_slug = await owner.gql.data('{ organization(slug: "acme-inc") { id } }')
    assert by_slug["organization"]["id"] == org_id
    members = (await owner.gql.data(MEMBERS, id=org_id))["organization"]["members"]
    assert members == [{"user": {"id": owner.user_id, "email": owner.email.lower()}, "role": "OWNER"}]


async def test_invitation_lifecycle_and_roles(anon: GQL, session_factory, running_worker) -> None:  # type: ignore[no-untyped-def]
    owner = await sign_up(anon)
    org_id = await create_org(owner)
    invitee = await sign_up(anon)
    invited = (await owner.gql.data(INVITE, org=org_id, email=invitee.email, role="ADMIN"))["inviteMember"]
    assert (invited["status"], invited["role"]) == ("PENDING", "ADMIN")
    token = await _invitation_token(session_factory, invitee.email.lower())

    # Someone else cannot use it; the invitee can, once.
    stranger = await sign_up(anon)
    assert (await stranger.gql.error(ACCEPT, t=token))["extensions"]["code"] == "FORBIDDEN"
    joined = (await invitee.gql.data(ACCEPT, t=token))["acceptInvitation"]
    assert joined == {"role": "ADMIN", "user": {"id": invitee.user_id}}
    assert (await invitee.gql.error(ACCEPT, t=token))["extensions"]["code"] == "NOT_FOUND"

    # An admin cannot create owners or touch the owner; the owner can.
    denied = await invitee.gql.error(CHANGE_ROLE, org=org_id, user=owner.user_id, role="MEMBER")
    assert denied["extensions"]["code"] == "FORBIDDEN"
    assert await owner.gql.data(CHANGE_ROLE, org=org_id, user=invitee.user_id, role="VIEWER")
    # A viewer may read but not manage members.
    assert len((await invitee.gql.data(MEMBERS, id=org_id))["organization"]["members"]) == 2
    viewer_invite = await invitee.gql.error(INVITE, org=org_id, email="x@example.com", role="MEMBER")
    assert viewer_invite["extensions"]["code"] == "FORBIDDEN"

    # The last owner can neither be demoted nor leave nor be removed.
    last = await owner.gql.error(CHANGE_ROLE, org=org_id, user=owner.user_id, role="ADMIN")
    assert (last["extensions"]["code"], last["extensions"]["reason"]) == ("CONFLICT", "LAST_OWNER")
    leave = await owner.gql.error("mutation($o: UUID!) { leaveOrganization(organizationId: $o) }", o=org_id)
    assert leave["extensions"]["reason"] == "LAST_OWNER"
    assert (await owner.gql.data(REMOVE, org=org_id, user=invitee.user_id))["removeMember"] is True
    gone = await invitee.gql.error(MEMBERS, id=org_id)
    assert gone["extensions"]["code"] == "NOT_FOUND"

    async with session_factory() as session:
        actions = set((await session.execute(select(AuditLog.action))).scalars())
    assert {"member.invited", "member.joined", "member.role_changed", "member.removed"} <= actions


async def test_invitations_expire_decline_and_revoke(anon: GQL, session_factory, running_worker) -> None:  # type: ignore[no-untyped-def]
    owner = await sign_up(anon)
    org_id = await create_org(owner)
    invitee = await sign_up(anon)
    first = (await owner.gql.data(INVITE, org=org_id, email=invitee.email, role="MEMBER"))["inviteMember"]
    token = await _invitation_token(session_factory, invitee.email.lower())
    async with session_factory() as session:
        await session.execute(update(Invitation).values(expires_at=utcnow()))
        await session.commit()
    expired = await invitee.gql.error(ACCEPT, t=token)
    assert (expired["extensions"]["code"], expired["extensions"].get("reason")) == ("NOT_FOUND", "EXPIRED")

    second = (await owner.gql.data(INVITE, org=org_id, email=invitee.email, role="MEMBER"))["inviteMember"]
    assert second["id"] != first["id"]
    token = await _invitation_token(session_factory, invitee.email.lower())
    assert await anon.data("mutation($t: String!) { declineInvitation(token: $t) }", t=token)
    assert (await invitee.gql.error(ACCEPT, t=token))["extensions"]["code"] == "NOT_FOUND"

    third = (await owner.gql.data(INVITE, org=org_id, email=invitee.email, role="MEMBER"))["inviteMember"]
    pending = await owner.gql.data(
        "query($id: UUID) { organization(id: $id) { invitations { id } } }", id=org_id
    )
    assert pending["organization"]["invitations"] == [{"id": third["id"]}]
    revoked = await owner.gql.data(
        "mutation($id: UUID!) { revokeInvitation(id: $id) { status } }", id=third["id"]
    )
    assert revoked["revokeInvitation"]["status"] == "REVOKED"
