"""The deployment's secret key and the sub-keys derived from it (one per purpose)."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from app.settings import ConfigError, Settings


@dataclass(frozen=True)
class Keys:
    jwt: bytes
    encryption: bytes

    @classmethod
    def from_secret(cls, secret: str) -> Keys:
        return cls(jwt=_derive(secret, b"syncforge:jwt"), encryption=_derive(secret, b"syncforge:aes"))


def _derive(secret: str, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(secret.encode())


def resolve_secret(settings: Settings) -> str:
    """The configured secret; in the embedded default, one generated once and kept beside the DB."""
    if settings.secret_key:
        return settings.secret_key
    if not settings.is_sqlite:
        raise ConfigError("SYNCFORGE_SECRET_KEY: required with PostgreSQL (at least 32 bytes)")
    path = (settings.sqlite_path or Path("syncforge.db")).with_suffix(".secret")
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


def load_keys(settings: Settings) -> Keys:
    return Keys.from_secret(resolve_secret(settings))
