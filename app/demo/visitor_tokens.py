"""End-user tokens for visitors of the demo: anyone may have one, and it opens only the demo's rooms.

What a developer's backend does with its secret key and `createEndUserToken`, the demo does here
for every visitor, in-process (end_user_tokens.mint, the service that mutation calls): the
visitor's id (kept by the page in localStorage, or a new `visitor-<hex>`), a name and a color
shown to the others, grants on rooms `demo:*` only, for an hour. A visitor id is a claim, not an
identity: the demo has no accounts.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app import input_guard
from app.accounts import end_user_tokens
from app.accounts.end_user_tokens import COLOR, MintedToken
from app.auth.principal import RoomAccess
from app.demo.seed import ROOM_PATTERN, DemoSeed
from app.errors import BadRequest, ValidationFailed
from app.security.keys import Keys

TOKEN_TTL_S = 3600
GRANTS = [(ROOM_PATTERN, [RoomAccess.READ, RoomAccess.WRITE, RoomAccess.PRESENCE, RoomAccess.COMMENT])]
MAX_BODY_BYTES = 4096  # three short fields
_VISITOR_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
NAME_MAX_CHARS = 40


@dataclass(frozen=True)
class Visitor:
    user_id: str
    name: str
    color: str


def new_visitor_id() -> str:
    return f"visitor-{secrets.token_hex(8)}"


def parse_visitor(body: bytes) -> Visitor:
    """`{"userId"?, "name", "color"}` as a Visitor; VALIDATION_ERROR naming the field otherwise
    (`field` None when the body itself is not a JSON object). Other keys are ignored."""
    if len(body) > MAX_BODY_BYTES:
        raise ValidationFailed(f"the body must be at most {MAX_BODY_BYTES} bytes")
    try:
        value: Any = input_guard.decode(body)
    except BadRequest as error:
        raise ValidationFailed(error.message) from None
    if not isinstance(value, dict):
        raise ValidationFailed('the body must be a JSON object: {"userId"?, "name", "color"}')
    user_id = value.get("userId")
    if user_id is None:
        user_id = new_visitor_id()
    elif not isinstance(user_id, str) or not _VISITOR_ID.match(user_id):
        raise ValidationFailed("userId must be 1-64 letters, digits, '_' or '-'", field="userId")
    name = value.get("name")
    if not isinstance(name, str) or input_guard.problem(name) or _CONTROL.search(name):
        raise ValidationFailed("name must be text without control characters", field="name")
    name = name.strip()
    if not 1 <= len(name) <= NAME_MAX_CHARS:
        raise ValidationFailed(f"name must be 1 to {NAME_MAX_CHARS} characters", field="name")
    color = value.get("color")
    if not isinstance(color, str) or not COLOR.match(color):
        raise ValidationFailed("color must look like #RRGGBB", field="color")
    return Visitor(user_id=user_id, name=name, color=color.lower())


async def mint(
    session: AsyncSession, keys: Keys, seed: DemoSeed, visitor: Visitor, *, max_ttl_s: int
) -> MintedToken:
    """A token of the demo organization for this visitor (flushes; the caller commits)."""
    request = end_user_tokens.TokenRequest(
        organization_id=seed.organization_id,
        # The key the token goes with (end-user tokens name their minting key; here, the page's).
        api_key_id=seed.api_key_id,
        external_id=visitor.user_id,
        name=visitor.name,
        avatar_url=None,
        color=visitor.color,
        info={},
        grants=end_user_tokens.parse_grants([(pattern, list(access)) for pattern, access in GRANTS]),
        ttl_s=min(TOKEN_TTL_S, max_ttl_s),
    )
    return await end_user_tokens.mint(session, keys, request, max_ttl_s=max_ttl_s)
