"""Everything a running process holds, built from settings by the app's lifespan."""

from __future__ import annotations

from dataclasses import dataclass, field

import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.accounts.end_user_tokens import KnownEndUsers
from app.auth.authenticate import Authenticator
from app.auth.rate_limit import RateLimits
from app.auth.usage import UsageRecorder
from app.cursors.feed import CursorRooms
from app.db import UnitOfWork
from app.documents.awareness import AwarenessFeed
from app.documents.debounce import Debouncer
from app.documents.log_writer import LogWriter
from app.documents.replicas import Replicas
from app.graphql.ws.keepalive import Pinger
from app.presence.event_feed import RoomEventFeed
from app.presence.recorder import PresenceRecorder
from app.presence.service import PresenceService
from app.realtime.access_epoch import AccessEpoch
from app.realtime.announced import Announcements
from app.realtime.connection_limits import Rate
from app.realtime.credential_watch import CredentialWatch
from app.realtime.feeds import Feeds
from app.realtime.hub import Hub
from app.rooms.cache import RoomCache
from app.security.keys import Keys
from app.settings import Settings
from workers.broker import JobQueue


@dataclass
class AppState:
    settings: Settings
    engine: AsyncEngine
    session_factory: async_sessionmaker[AsyncSession]
    hub: Hub
    jobs: JobQueue
    redis: aioredis.Redis | None
    keys: Keys
    usage: UsageRecorder
    rate_limits: RateLimits
    authenticator: Authenticator
    presence: PresenceService
    cursors: CursorRooms
    event_feeds: Feeds[RoomEventFeed]
    recorder: PresenceRecorder
    rooms: RoomCache
    pinger: Pinger
    credentials: CredentialWatch
    documents: Replicas
    compactor: Debouncer
    document_changes: Announcements
    awareness: Feeds[AwarenessFeed]
    document_log: LogWriter
    access_epoch: AccessEpoch
    connection_rates: dict[str, Rate]
    member_changes: Announcements
    known_end_users: KnownEndUsers = field(default_factory=KnownEndUsers)

    def unit_of_work(self) -> UnitOfWork:
        return UnitOfWork(self.session_factory)
