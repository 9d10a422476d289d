"""May this connection join this room? Called by presence before a connection becomes present."""

from __future__ import annotations

from typing import Any

from app.auth.policy import Action, Policy
from app.auth.principal import Developer, SecretKeyClient
from app.errors import Forbidden
from app.rooms.cache import RoomSnapshot
from app.rooms.models import RoomStatus
from app.security.passwords import verify_password


async def authorize_join(
    policy: Policy, room: RoomSnapshot, password: str | None, *, proven: dict[Any, Any] | None = None
) -> None:
    """Raise unless the principal may join `room` now.

    NOT_FOUND for rooms the principal cannot see, FORBIDDEN when it may not be present there,
    FORBIDDEN with reason ARCHIVED for rooms that are not active, and for password rooms
    FORBIDDEN with reason PASSWORD_REQUIRED or WRONG_PASSWORD. Members of the organization and
    secret keys skip the password: they could read or change it anyway.
    """
    await policy.room(room, Action.PRESENCE_WRITE)
    if room.status != RoomStatus.ACTIVE:
        raise Forbidden(f"this room is {room.status.value}", reason="ARCHIVED")
    if room.password_hash is None or await _skips_password(policy, room):
        return
    if not password:
        raise Forbidden("this room needs a password", reason="PASSWORD_REQUIRED")
    # `proven` (a connection's memo): this hash was verified against this password before. A
    # changed password has a new hash, so the password given is checked again.
    key = ("password", room.password_hash, password)
    if proven is not None and key in proven:
        return
    if not await verify_password(room.password_hash, password):
        raise Forbidden("wrong room password", reason="WRONG_PASSWORD")
    if proven is not None:
        proven[key] = True


async def _skips_password(policy: Policy, room: RoomSnapshot) -> bool:
    principal = policy.principal
    if isinstance(principal, SecretKeyClient):
        return principal.organization_id == room.organization_id
    if isinstance(principal, Developer):
        return await policy.role_in(room.organization_id) is not None
    return False


def room_is_full(current: int, room: RoomSnapshot) -> bool:
    """True when `current` connections already fill the room (a new one would exceed the limit)."""
    return current >= room.max_participants
