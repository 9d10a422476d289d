"""API keys derived from the deployment's secret key: keys the server can show again although,
like every key, it stores only their hash.

The demo page needs its publishable key on every start, and `syncforge dev-keys` prints the same
development keys on every run. Rather than keep a readable copy of a key (an encrypted column, a
migration, and a secret sitting in the database) or mint a new key each time (keys piling up, an
`.env` written yesterday no longer matching), the key's random part is computed: HMAC-SHA256
under a sub-key of the deployment secret (HKDF, a label of its own) of what the key is for, its
organization, its type and a generation number. So:

- the same secret gives the same key on every start and in every process; a new secret gives
  unrelated keys (the old rows stay, unknown to anyone who never saw them);
- a key reveals nothing about the secret, and one purpose's key nothing about another's;
- the row is an ordinary `api_keys` row (prefix + SHA-256 hash): authentication, revocation,
  rotation and rate limits treat it like any other. A revoked (or rotated, or expired) key is
  followed by the next generation, so revoking one in GraphiQL is how to get a new one.

Whoever holds the deployment secret can compute these keys, but they can already sign any
token; nothing new is exposed.
"""

from __future__ import annotations

import hashlib
import hmac
import string
import uuid
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts import api_keys
from app.accounts.models import ApiKey, ApiKeyStatus, ApiKeyType, Organization
from app.db.types import utcnow
from app.security.keys import Keys
from app.security.tokens import hash_token

_ALPHABET = string.ascii_letters + string.digits
_RANDOM_LENGTH = 40  # as api_keys.generate: ~238 bits
_UNBIASED_BELOW = 256 - 256 % len(_ALPHABET)  # bytes at or above this are skipped (no modulo bias)
_SUBKEY_INFO = b"syncforge:derived-api-keys"
# Revoked generations are skipped; this many is far past any real use (and bounds the lookups).
MAX_GENERATIONS = 1000


@dataclass(frozen=True)
class DerivedKey:
    secret: str  # the full key text, e.g. pk_live_...
    lookup: str  # api_keys' lookup prefix (the first 8 random characters)
    key_hash: str


def derive(
    keys: Keys, *, purpose: str, organization_id: uuid.UUID, key_type: ApiKeyType, generation: int = 0
) -> DerivedKey:
    subkey = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_SUBKEY_INFO).derive(keys.encryption)
    label = f"{purpose}\x00{organization_id}\x00{key_type.value}\x00{generation}".encode()
    characters: list[str] = []
    block = 0
    while len(characters) < _RANDOM_LENGTH:
        digest = hmac.new(subkey, label + block.to_bytes(4, "big"), hashlib.sha256).digest()
        block += 1
        characters.extend(_ALPHABET[byte % len(_ALPHABET)] for byte in digest if byte < _UNBIASED_BELOW)
    random_part = "".join(characters[:_RANDOM_LENGTH])
    secret = api_keys.PREFIXES[key_type] + random_part
    parsed = api_keys.parse(secret)
    if parsed is None:  # api_keys changed its format: derive what it now accepts
        raise RuntimeError("derived API key does not match the API key format")
    return DerivedKey(secret=secret, lookup=parsed[1], key_hash=hash_token(secret))


async def ensure(
    session: AsyncSession,
    keys: Keys,
    *,
    purpose: str,
    organization_id: uuid.UUID,
    key_type: ApiKeyType,
    name: str,
    scopes: list[str],
    rate_limit: int,
    created_by_id: uuid.UUID | None = None,
) -> tuple[ApiKey, str]:
    """The key of this purpose (its row and its text): the first generation that is not revoked
    or expired, created when it has no row yet. Flushes, never commits. The organization's row
    stays locked until the caller's transaction ends: concurrent calls (two processes starting)
    check and add the key one at a time, so it is never added twice."""
    await lock_organization(session, organization_id)
    now = utcnow()
    for generation in range(MAX_GENERATIONS):
        derived = derive(
            keys, purpose=purpose, organization_id=organization_id, key_type=key_type, generation=generation
        )
        row = (
            await session.execute(
                select(ApiKey).where(
                    ApiKey.organization_id == organization_id, ApiKey.key_hash == derived.key_hash
                )
            )
        ).scalar_one_or_none()
        if row is None:
            row = ApiKey(
                organization_id=organization_id,
                name=name,
                type=key_type,
                key_prefix=derived.lookup,
                key_hash=derived.key_hash,
                scopes=api_keys.validate_scopes(scopes),
                rate_limit=rate_limit,
                allowed_origins=[],
                created_by_id=created_by_id,
            )
            session.add(row)
            await session.flush()
            return row, derived.secret
        if row.status == ApiKeyStatus.ACTIVE and (row.expires_at is None or row.expires_at > now):
            return row, derived.secret
    raise RuntimeError(f"{MAX_GENERATIONS} generations of the {purpose} key are revoked")


async def lock_organization(session: AsyncSession, organization_id: uuid.UUID) -> None:
    """Lock the organization's row for the rest of the transaction with a no-op UPDATE, as
    rooms.create_room does (SQLite has no row locks: a write takes the database's)."""
    await session.execute(
        update(Organization)
        .where(Organization.id == organization_id)  # type: ignore[arg-type]
        .values(updated_at=Organization.updated_at)  # itself: no change, and no onupdate either
        .execution_options(synchronize_session=False)
    )
