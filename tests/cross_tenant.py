"""The cross-tenant matrix: every operation that takes an id, called with another organization's
credentials, must answer NOT_FOUND or FORBIDDEN and never data.

Later issues append their operations to CASES: a document plus a function that picks the victim's
ids out of `Victim`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Victim:
    """Objects of the organization under attack, created by tests/test_cross_tenant.py."""

    org_id: str
    org_slug: str
    owner_id: str
    room_id: str
    room_slug: str
    api_key_id: str
    invitation_id: str
    extra: dict[str, str] = field(default_factory=dict)  # later issues add their objects here


@dataclass(frozen=True)
class Case:
    name: str
    document: str
    variables: Callable[[Victim], dict[str, Any]]
    websocket: bool = False  # also run over graphql-transport-ws
    http: bool = True  # False for subscriptions and connection-bound mutations


CASES: list[Case] = [
    Case(
        "organization by id",
        "query($v: UUID) { organization(id: $v) { id name } }",
        lambda v: {"v": v.org_id},
    ),
    Case(
        "organization by slug",
        "query($v: String) { organization(slug: $v) { id } }",
        lambda v: {"v": v.org_slug},
    ),
    Case(
        "members", "query($v: UUID) { organization(id: $v) { members { role } } }", lambda v: {"v": v.org_id}
    ),
    Case(
        "room by id",
        "query($v: UUID) { room(id: $v) { id name } }",
        lambda v: {"v": v.room_id},
        websocket=True,
    ),
    Case(
        "room by slug",
        "query($o: UUID, $s: String) { room(organizationId: $o, slug: $s) { id } }",
        lambda v: {"o": v.org_id, "s": v.room_slug},
    ),
    Case(
        "rooms",
        "query($v: UUID!) { rooms(organizationId: $v) { edges { cursor } } }",
        lambda v: {"v": v.org_id},
    ),
    Case(
        "update organization",
        'mutation($v: UUID!) { updateOrganization(id: $v, input: {name: "pwned"}) { id } }',
        lambda v: {"v": v.org_id},
    ),
    Case(
        "invite member",
        'mutation($v: UUID!) { inviteMember(organizationId: $v, email: "x@evil.test", role: OWNER) { id } }',
        lambda v: {"v": v.org_id},
    ),
    Case(
        "revoke invitation",
        "mutation($v: UUID!) { revokeInvitation(id: $v) { id } }",
        lambda v: {"v": v.invitation_id},
    ),
    Case(
        "change member role",
        "mutation($o: UUID!, $u: UUID!) {"
        " changeMemberRole(organizationId: $o, userId: $u, role: VIEWER) { role } }",
        lambda v: {"o": v.org_id, "u": v.owner_id},
    ),
    Case(
        "remove member",
        "mutation($o: UUID!, $u: UUID!) { removeMember(organizationId: $o, userId: $u) }",
        lambda v: {"o": v.org_id, "u": v.owner_id},
    ),
    Case(
        "leave organization",
        "mutation($v: UUID!) { leaveOrganization(organizationId: $v) }",
        lambda v: {"v": v.org_id},
    ),
    Case(
        "create api key",
        "mutation($v: UUID!) {"
        ' createApiKey(organizationId: $v, input: {name: "x", kind: SECRET}) { secret } }',
        lambda v: {"v": v.org_id},
    ),
    Case(
        "revoke api key", "mutation($v: UUID!) { revokeApiKey(id: $v) { id } }", lambda v: {"v": v.api_key_id}
    ),
    Case(
        "update api key",
        'mutation($v: UUID!) { updateApiKey(id: $v, input: {scopes: ["rooms:read"]}) { id } }',
        lambda v: {"v": v.api_key_id},
    ),
    Case(
        "rotate api key",
        "mutation($v: UUID!) { rotateApiKey(id: $v) { secret } }",
        lambda v: {"v": v.api_key_id},
    ),
]
CASES += [
    Case(
        "create room",
        'mutation($v: UUID!) { createRoom(organizationId: $v, input: {name: "x", slug: "x"}) { id } }',
        lambda v: {"v": v.org_id},
    ),
    Case(
        "update room",
        'mutation($v: UUID!) { updateRoom(id: $v, input: {name: "pwned", password: null}) { id name } }',
        lambda v: {"v": v.room_id},
    ),
    Case("archive room", "mutation($v: UUID!) { archiveRoom(id: $v) { id } }", lambda v: {"v": v.room_id}),
    Case(
        "unarchive room", "mutation($v: UUID!) { unarchiveRoom(id: $v) { id } }", lambda v: {"v": v.room_id}
    ),
    Case("delete room", "mutation($v: UUID!) { deleteRoom(id: $v) }", lambda v: {"v": v.room_id}),
    Case(
        "rooms search",
        'query($v: UUID!) { rooms(organizationId: $v, search: "secret") { edges { node { id } } } }',
        lambda v: {"v": v.org_id},
    ),
    # Realtime (issue 4): joining, cursors and events are refused before anything is sent.
    Case(
        "room presence",
        "subscription($v: UUID!) { roomPresence(roomId: $v) { kind users { userId } } }",
        lambda v: {"v": v.room_id},
        websocket=True,
        http=False,
    ),
    Case(
        "cursors",
        "subscription($v: UUID!) { cursors(roomId: $v) { cursors { x } } }",
        lambda v: {"v": v.room_id},
        websocket=True,
        http=False,
    ),
    Case(
        "room events",
        "subscription($v: UUID!) { roomEvents(roomId: $v) { type } }",
        lambda v: {"v": v.room_id},
        websocket=True,
        http=False,
    ),
    Case(
        "move cursor",
        "mutation($v: UUID!) { moveCursor(roomId: $v, x: 1, y: 2) }",
        lambda v: {"v": v.room_id},
        websocket=True,
        http=False,
    ),
    Case(
        "broadcast event",
        'mutation($v: UUID!) { broadcastEvent(roomId: $v, type: "x", payload: {}) }',
        lambda v: {"v": v.room_id},
        websocket=True,
    ),
    Case(
        "document by id",
        "query($v: UUID) { document(id: $v) { id name } }",
        lambda v: {"v": v.extra["document_id"]},
        websocket=True,
    ),
    Case(
        "document by slug",
        'query($r: UUID) { document(roomId: $r, slug: "plans") { id } }',
        lambda v: {"r": v.room_id},
    ),
    Case(
        "documents of a room",
        "query($r: UUID!) { documents(roomId: $r) { edges { node { id } } } }",
        lambda v: {"r": v.room_id},
    ),
    Case(
        "document sync",
        "query($v: UUID!) { documentSync(documentId: $v) { update } }",
        lambda v: {"v": v.extra["document_id"]},
        websocket=True,
    ),
    Case(
        "create document",
        'mutation($r: UUID!) { createDocument(roomId: $r, input: {name: "x"}) { id } }',
        lambda v: {"r": v.room_id},
    ),
    Case(
        "rename document",
        'mutation($v: UUID!) { updateDocument(id: $v, input: {name: "pwned"}) { id } }',
        lambda v: {"v": v.extra["document_id"]},
    ),
    Case(
        "trash document",
        "mutation($v: UUID!) { trashDocument(id: $v) { id } }",
        lambda v: {"v": v.extra["document_id"]},
    ),
    Case(
        "restore document",
        "mutation($v: UUID!) { restoreDocument(id: $v) { id } }",
        lambda v: {"v": v.extra["document_id"]},
    ),
    Case(
        "apply document update",
        'mutation($v: UUID!) { applyDocumentUpdate(documentId: $v, update: "AAA=") { seq } }',
        lambda v: {"v": v.extra["document_id"]},
        websocket=True,
    ),
    Case(
        "document updates",
        "subscription($v: UUID!) { documentUpdates(documentId: $v) { seq } }",
        lambda v: {"v": v.extra["document_id"]},
        websocket=True,
        http=False,
    ),
    Case(
        "update awareness",
        'mutation($v: UUID!) { updateAwareness(documentId: $v, update: "AA==") }',
        lambda v: {"v": v.extra["document_id"]},
        websocket=True,
        http=False,
    ),
    Case(
        "document awareness",
        "subscription($v: UUID!) { documentAwareness(documentId: $v) { update } }",
        lambda v: {"v": v.extra["document_id"]},
        websocket=True,
        http=False,
    ),
    Case(
        "document snapshots",
        "query($v: UUID!) { documentSnapshots(documentId: $v) { edges { node { id } } } }",
        lambda v: {"v": v.extra["document_id"]},
    ),
    Case(
        "document snapshot",
        "query($v: UUID!) { documentSnapshot(id: $v) { update } }",
        lambda v: {"v": v.extra["snapshot_id"]},
    ),
    Case(
        "create snapshot",
        'mutation($v: UUID!) { createDocumentSnapshot(documentId: $v, name: "x") { id } }',
        lambda v: {"v": v.extra["document_id"]},
    ),
    Case(
        "restore snapshot",
        "mutation($v: UUID!) { restoreDocumentSnapshot(id: $v) { seq } }",
        lambda v: {"v": v.extra["snapshot_id"]},
    ),
]


# --- Rights revoked while connected (issue 10) --------------------------------------------------
# An open socket must not keep a right that was taken away: each stream below must end with
# NOT_FOUND or FORBIDDEN, and each hot mutation (or memoized query) must be refused the next time,
# when the connection's developer is removed, its room made private, or its key's scopes narrowed.


@dataclass(frozen=True)
class LiveCase:
    name: str
    document: str
    # Variables from the ids of the room under test: room_id, document_id, and `update` (a fresh
    # Yjs update) or `awareness` (an awareness update) where the operation takes one.
    variables: Callable[[dict[str, str]], dict[str, Any]]
    stream: bool  # a subscription (else a mutation or query sent again after the revocation)
    needs_write: bool = False  # only for credentials that may write documents


LIVE_CASES: list[LiveCase] = [
    LiveCase(
        "room presence",
        "subscription($v: UUID!) { roomPresence(roomId: $v) { kind } }",
        lambda ids: {"v": ids["room_id"]},
        stream=True,
    ),
    LiveCase(
        "cursors",
        "subscription($v: UUID!) { cursors(roomId: $v) { full } }",
        lambda ids: {"v": ids["room_id"]},
        stream=True,
    ),
    LiveCase(
        "room events",
        "subscription($v: UUID!) { roomEvents(roomId: $v) { type } }",
        lambda ids: {"v": ids["room_id"]},
        stream=True,
    ),
    LiveCase(
        "document updates",
        "subscription($v: UUID!) { documentUpdates(documentId: $v) { seq } }",
        lambda ids: {"v": ids["document_id"]},
        stream=True,
    ),
    LiveCase(
        "document awareness",
        "subscription($v: UUID!) { documentAwareness(documentId: $v) { full } }",
        lambda ids: {"v": ids["document_id"]},
        stream=True,
    ),
    LiveCase(
        "move cursor",
        "mutation($v: UUID!) { moveCursor(roomId: $v, x: 1, y: 2) }",
        lambda ids: {"v": ids["room_id"]},
        stream=False,
    ),
    LiveCase(
        "broadcast event",
        'mutation($v: UUID!) { broadcastEvent(roomId: $v, type: "x", payload: {}) }',
        lambda ids: {"v": ids["room_id"]},
        stream=False,
    ),
    LiveCase(
        "update presence",
        "mutation($v: UUID!) { updatePresence(roomId: $v, presence: {page: 2}) }",
        lambda ids: {"v": ids["room_id"]},
        stream=False,
    ),
    LiveCase(
        "update awareness",
        "mutation($v: UUID!, $u: String!) { updateAwareness(documentId: $v, update: $u) }",
        lambda ids: {"v": ids["document_id"], "u": ids["awareness"]},
        stream=False,
    ),
    LiveCase(
        "document sync",
        "query($v: UUID!) { documentSync(documentId: $v) { seq } }",
        lambda ids: {"v": ids["document_id"]},
        stream=False,
    ),
    LiveCase(
        "apply document update",
        "mutation($v: UUID!, $u: String!) { applyDocumentUpdate(documentId: $v, update: $u) { seq } }",
        lambda ids: {"v": ids["document_id"], "u": ids["update"]},
        stream=False,
        needs_write=True,
    ),
]
