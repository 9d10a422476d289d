"""Process settings, read from the environment by the CLI or built directly by tests.

Nothing here runs at import time: `Settings()` is called by `create_app`'s caller (the CLI) or by tests.
"""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path
from typing import Literal

from limits import parse as parse_limit
from pydantic import AliasChoices, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError


class ConfigError(Exception):
    """A setting is wrong or missing; the message names it and fits on one line."""


class Mode(StrEnum):
    EMBEDDED = "embedded"
    PRODUCTION = "production"


def _env(name: str) -> AliasChoices:
    # Both the bare name (DATABASE_URL, as 12-factor tools expect) and the prefixed one are read.
    return AliasChoices(name, f"SYNCFORGE_{name}")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SYNCFORGE_", extra="ignore", populate_by_name=True)

    database_url: str = Field(
        default="sqlite+aiosqlite:///./syncforge.db", validation_alias=_env("DATABASE_URL")
    )
    redis_url: str | None = Field(default=None, validation_alias=_env("REDIS_URL"))
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "info"
    # Migrate the database to head when `serve` starts (always on in the embedded default).
    auto_migrate: bool | None = None
    db_pool_size: int = 10
    db_connect_timeout: float = 5.0
    introspection: bool = True
    # In the embedded default, jobs run in this process; in production, `syncforge worker` runs them.
    worker_threads: int = 2
    # Prefix of every Redis key and channel this deployment owns (jobs, pub/sub), so several
    # deployments (or test runs) can share one Redis server.
    redis_namespace: str = "syncforge"
    # Connections per Redis client, at most; past that a command waits for one (up to the
    # timeout) instead of failing, so a storm of leaves queues rather than being dropped.
    redis_max_connections: int = 64
    redis_pool_timeout_s: float = 10.0
    # --- Accounts and security -------------------------------------------------------------
    # Signs JWTs and derives the encryption key for stored secrets (TOTP). At least 32 bytes.
    # Required with PostgreSQL; the embedded default keeps a generated one beside the SQLite file.
    secret_key: str | None = None
    public_url: str = "http://127.0.0.1:8000"  # base of links in emails and OAuth redirects
    access_token_ttl_s: int = 900
    refresh_token_ttl_days: int = 30
    end_user_token_max_ttl_s: int = 86_400
    email_verification_ttl_h: int = 48
    password_reset_ttl_min: int = 60
    invitation_ttl_days: int = 7
    password_min_length: int = 10
    # Email: SMTP when smtp_host is set; otherwise messages are kept in the database mailbox.
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = True
    email_from: str = "SyncForge <no-reply@syncforge.local>"
    # OAuth providers (authorization-code flow with PKCE); endpoints are overridable.
    google_client_id: str | None = None
    google_client_secret: str | None = None
    google_authorize_url: str = "https://accounts.google.com/o/oauth2/v2/auth"
    google_token_url: str = "https://oauth2.googleapis.com/token"
    google_userinfo_url: str = "https://openidconnect.googleapis.com/v1/userinfo"
    github_client_id: str | None = None
    github_client_secret: str | None = None
    github_authorize_url: str = "https://github.com/login/oauth/authorize"
    github_token_url: str = "https://github.com/login/oauth/access_token"
    github_api_url: str = "https://api.github.com"
    # Abuse limits.
    ip_rate_limit: str = "600/minute"
    failed_login_limit: str = "10/10minutes"  # per account: password and one-time code guessing
    email_request_limit: str = "5/hour"  # reset/verification emails per address
    api_key_rate_limit_default: int = 1000  # per minute (NFR-2.2); a key's rate_limit overrides
    max_query_depth: int = 12
    max_query_tokens: int = 3000
    max_query_aliases: int = 30
    max_request_bytes: int = 1_000_000
    # Keys found are cached per process this long (revocations evict them everywhere at once).
    api_key_cache_ttl_s: float = 10.0
    # How often API key usage counters are written (one UPDATE per key per flush).
    usage_flush_interval_s: float = 5.0

    # --- Realtime ---------------------------------------------------------------------------
    # Server pings on every WebSocket (a room's presence TTL lowers it for its connections).
    ws_keepalive_s: float = 10.0
    # A dropped connection that comes back within this many seconds is neither a leave nor a join.
    presence_grace_s: float = 5.0
    # A cursor that has not moved for this long is shown idle (FR-5.6).
    cursor_idle_s: float = 30.0
    # Processes announce their cursors at least this often; others drop the cursors of a process
    # silent for three of these (it died).
    cursor_heartbeat_s: float = 5.0
    # Participants and connection logs are written in one batch this often.
    presence_flush_interval_s: float = 2.0
    # Presence changes are merged and sent (and published to other processes) once per tick.
    presence_tick_s: float = 0.05
    # Frames waiting for one slow socket, at most; past that its streams are resynced or ended.
    ws_outbox_max_frames: int = 256
    ws_outbox_max_bytes: int = 1 << 20
    # Realtime operations read rooms from a per-process cache (changes evict it at once).
    room_cache_ttl_s: float = 10.0
    # Per connection, what it may push into its rooms each second (plus two seconds' burst).
    # Other operations on a socket count against the IP and API key limits, like HTTP requests.
    ws_moves_per_s: float = 60.0
    ws_presence_updates_per_s: float = 20.0
    ws_broadcasts_per_s: float = 30.0
    # Durable writes and relayed states: generous (a client sends each keystroke), but bounded.
    ws_document_updates_per_s: float = 200.0
    ws_awareness_updates_per_s: float = 60.0

    # --- Documents (Yjs) ---------------------------------------------------------------------
    # A document's stored state plus its uncompacted log may not grow past this (bytes).
    document_max_bytes: int = 10 << 20
    # One update, decoded (the request's own limit, max_request_bytes, bounds its base64 form).
    document_update_max_bytes: int = 512 << 10
    # The log is compacted into the stored state this long after the last edit, and at the
    # latest this long after the first edit of a burst.
    document_compact_debounce_s: float = 2.0
    document_compact_max_s: float = 10.0
    # A document no subscriber or operation has used for this long is unloaded from memory.
    document_unload_grace_s: float = 30.0
    # Recent updates kept in memory per loaded document, to replay to reconnecting clients.
    document_replay_updates: int = 1000
    # While a document is edited, an automatic snapshot at most this often; at most this many kept.
    document_snapshot_interval_s: float = 600.0
    document_max_auto_snapshots: int = 20
    # "log" (always): an update is acknowledged once appended to the durable log and committed.
    # "none" exists only as the baseline of bench/documents.py (durability cost): updates are
    # acknowledged from memory and lost on restart. Never use it for real documents.
    document_durability: Literal["log", "none"] = "log"
    # Awareness is batched per tick; each document takes its room's cursor tick once in use.
    awareness_tick_s: float = 0.05

    # --- Periodic jobs --------------------------------------------------------------------
    room_idle_archive_days: float = 30.0  # rooms empty for longer are archived (FR-3.6)
    room_archive_check_s: float = 3600.0
    purge_interval_s: float = 6 * 3600.0
    # Run the scheduler inside `serve` (default in the embedded mode; in production run one
    # `syncforge scheduler` process instead).
    embedded_scheduler: bool | None = None

    # Retention, in days (seed data model: "Data Retention Policies").
    retention_notifications_days: int = 30
    retention_connection_logs_days: int = 30
    retention_webhook_deliveries_days: int = 7

    # --- Demo ---------------------------------------------------------------------------------
    # The live demo at /demo (app/demo/): its page, a token endpoint minting end-user tokens for
    # any visitor, and a seeded demo organization. None: on in the embedded default (SQLite and
    # no REDIS_URL), off otherwise. Env SYNCFORGE_DEMO=true/false.
    demo_enabled: bool | None = Field(default=None, validation_alias=AliasChoices("SYNCFORGE_DEMO"))
    # Tokens POST /demo/token mints per client address (on top of SYNCFORGE_IP_RATE_LIMIT).
    demo_token_rate_limit: str = "30/minute"

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        return normalize_database_url(value)

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value is None or value.strip() == "":
            return None
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @field_validator("demo_token_rate_limit")
    @classmethod
    def _rate_limit(cls, value: str) -> str:
        try:
            parse_limit(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a rate limit (e.g. 30/minute)") from None
        return value

    @field_validator("secret_key")
    @classmethod
    def _secret_key(cls, value: str | None) -> str | None:
        if value is not None and len(value.encode()) < 32:
            raise ValueError("must be at least 32 bytes")
        return value

    @property
    def mode(self) -> Mode:
        return Mode.PRODUCTION if self.redis_url else Mode.EMBEDDED

    @property
    def database_backend(self) -> str:
        return make_url(self.database_url).get_backend_name()

    @property
    def is_sqlite(self) -> bool:
        return self.database_backend == "sqlite"

    @property
    def should_auto_migrate(self) -> bool:
        return self.is_sqlite if self.auto_migrate is None else self.auto_migrate

    @property
    def runs_embedded_scheduler(self) -> bool:
        return self.mode == Mode.EMBEDDED if self.embedded_scheduler is None else self.embedded_scheduler

    @property
    def serves_demo(self) -> bool:
        if self.demo_enabled is not None:
            return self.demo_enabled
        return self.is_sqlite and self.mode == Mode.EMBEDDED

    @property
    def sqlite_path(self) -> Path | None:
        if not self.is_sqlite:
            return None
        database = make_url(self.database_url).database
        return Path(database) if database and database != ":memory:" else None


def normalize_database_url(value: str) -> str:
    """Accept the usual spellings and return the async driver URL, or raise ValueError."""
    try:
        url: URL = make_url(value)
    except ArgumentError as exc:
        raise ValueError(f"is not a database URL ({value!r})") from exc
    backend = url.get_backend_name()
    if backend in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+asyncpg")
    elif backend == "sqlite":
        url = url.set(drivername="sqlite+aiosqlite")
    else:
        raise ValueError(f"unsupported database {backend!r}: use postgresql+asyncpg:// or sqlite://")
    if url.get_backend_name() == "postgresql" and not url.database:
        raise ValueError("names no database (postgresql+asyncpg://user@host:5432/DBNAME)")
    return url.render_as_string(hide_password=False)


def _setting_name(loc: str) -> str:
    """The environment variable a validation error is about, as the user spelled it."""
    bare = loc.upper().removeprefix("SYNCFORGE_")
    if bare in ("DATABASE_URL", "REDIS_URL"):
        return bare if bare in os.environ or f"SYNCFORGE_{bare}" not in os.environ else f"SYNCFORGE_{bare}"
    return f"SYNCFORGE_{bare}"


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment, turning validation errors into one-line ConfigErrors."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = _setting_name(str(first["loc"][0]) if first["loc"] else "settings")
        message = str(first["msg"]).removeprefix("Value error, ")
        raise ConfigError(f"{name}: {message}") from None
