"""How a principal appears to others in a room: a user id and display info."""

from __future__ import annotations

from typing import Any

from app.auth.principal import Developer, EndUserClient, Principal, PublishableKeyClient, SecretKeyClient


def presence_identity(principal: Principal) -> tuple[str, dict[str, Any]]:
    if isinstance(principal, EndUserClient):
        return principal.external_id, {k: v for k, v in principal.info.items() if v is not None}
    if isinstance(principal, Developer):
        return f"developer:{principal.user_id}", {}
    if isinstance(principal, SecretKeyClient | PublishableKeyClient):
        return f"key:{principal.api_key_id}", {}
    return "anonymous", {}
