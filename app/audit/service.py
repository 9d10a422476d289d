"""Audit log rows for security-relevant actions, written in the caller's transaction."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.models import AuditLog
from app.auth.principal import Developer, EndUserClient, Principal, PublishableKeyClient, SecretKeyClient


def record(
    session: AsyncSession,
    action: str,
    *,
    principal: Principal | None = None,
    actor_user_id: uuid.UUID | None = None,
    organization_id: uuid.UUID | None = None,
    entity_type: str | None = None,
    entity_id: uuid.UUID | str | None = None,
    changes: dict[str, Any] | None = None,
    ip_address: str | None = None,
    user_agent: str | None = None,
) -> AuditLog:
    """Add one row. `changes` must never hold secrets: callers pass names and values, not keys."""
    actor_type, api_key_id = "system", None
    if isinstance(principal, Developer):
        actor_type, actor_user_id = "user", actor_user_id or principal.user_id
    elif isinstance(principal, SecretKeyClient | PublishableKeyClient):
        actor_type, api_key_id = "api_key", principal.api_key_id
    elif isinstance(principal, EndUserClient):
        actor_type, api_key_id = "end_user", principal.api_key_id
    elif actor_user_id is not None:
        actor_type = "user"
    row = AuditLog(
        organization_id=organization_id,
        actor_user_id=actor_user_id,
        actor_api_key_id=api_key_id,
        actor_type=actor_type,
        action=action,
        entity_type=entity_type,
        entity_id=str(entity_id) if entity_id is not None else None,
        changes=changes or {},
        ip_address=ip_address,
        user_agent=(user_agent or "")[:300] or None,
    )
    session.add(row)
    return row
