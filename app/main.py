"""The ASGI application: `create_app(settings)` builds it; the lifespan builds what it holds."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from functools import partial
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from app.accounts import api_keys
from app.auth.authenticate import Authenticator
from app.auth.key_cache import KeyCache, KeySnapshot
from app.auth.rate_limit import RateLimits
from app.auth.usage import UsageRecorder
from app.cursors.feed import CursorRooms
from app.db import create_engine, create_session_factory
from app.demo import landing
from app.demo.routes import demo_routes
from app.demo.runtime import DemoRuntime
from app.documents import service as document_service
from app.documents.awareness import AwarenessFeed
from app.documents.debounce import Debouncer
from app.documents.log_writer import LogWriter
from app.documents.replica import DocumentReplica
from app.documents.replicas import Replicas
from app.graphql.schema import build_schema, hot_fields
from app.graphql.view import GRAPHIQL_ASSETS, GRAPHIQL_ASSETS_URL, GraphQLView
from app.graphql.ws.keepalive import Pinger
from app.graphql.ws.plans import PlanCache
from app.health import healthz, readyz
from app.presence.event_feed import RoomEventFeed
from app.presence.recorder import PresenceRecorder
from app.presence.service import PresenceService
from app.realtime.access_epoch import AccessEpoch, Rechecks
from app.realtime.announced import Announcements
from app.realtime.connection_limits import ConnectionLimits
from app.realtime.credential_watch import CredentialWatch
from app.realtime.feeds import Feeds
from app.realtime.hub import Hub
from app.realtime.presence_registry import MemoryPresenceRegistry, RedisPresenceRegistry
from app.realtime.redis_client import redis_client
from app.realtime.room_watch import RoomWatch
from app.request_limits import MaxBodySize
from app.rooms.cache import RoomCache
from app.security.keys import load_keys
from app.settings import Settings, load_settings
from app.state import AppState
from workers.broker import JobQueue
from workers.documents import compact_document
from workers.scheduler import build_scheduler

log = logging.getLogger("syncforge")


def create_app(settings: Settings | None = None, *, freeze_gc: bool = False) -> Starlette:
    """`freeze_gc` (the serve command): once started, move every object to the collector's
    permanent generation, so full collections only walk what serving allocates."""
    settings = settings or load_settings()
    keys = load_keys(settings)
    schema = build_schema(settings)
    graphql = GraphQLView(schema, PlanCache(schema, hot_fields(), settings))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            engine = create_engine(settings)
            stack.push_async_callback(_bounded, "engine", engine.dispose)
            hub = Hub.from_settings(settings)
            await hub.start()
            stack.push_async_callback(_bounded, "hub", hub.stop)
            redis = (
                redis_client(
                    settings.redis_url,
                    max_connections=settings.redis_max_connections,
                    timeout_s=settings.redis_pool_timeout_s,
                )
                if settings.redis_url
                else None
            )
            if redis is not None:
                stack.push_async_callback(_bounded, "redis", redis.aclose)
            jobs = JobQueue(settings)
            stack.callback(jobs.close)
            if jobs.is_embedded:
                # Embedded default: this process is also the worker.
                worker = jobs.start_worker()
                stack.callback(worker.stop)
            if settings.runs_embedded_scheduler:
                scheduler = build_scheduler(jobs, settings)
                scheduler.start()
                stack.callback(scheduler.shutdown, wait=False)
            session_factory = create_session_factory(engine)
            usage = UsageRecorder(session_factory, settings.usage_flush_interval_s)
            await usage.start()
            stack.push_async_callback(_bounded, "usage", usage.stop)
            rate_limits = RateLimits(settings)
            stack.push_async_callback(_bounded, "rate_limits", rate_limits.close)
            registry = (
                RedisPresenceRegistry(redis, settings.redis_namespace) if redis else MemoryPresenceRegistry()
            )
            key_cache = KeyCache(hub, settings.api_key_cache_ttl_s)
            await key_cache.start()
            stack.push_async_callback(_bounded, "key_cache", key_cache.stop)
            rooms = RoomCache(session_factory, hub, settings.room_cache_ttl_s)
            await rooms.start()
            stack.push_async_callback(_bounded, "rooms", rooms.stop)
            presence = PresenceService(
                registry, hub, grace_s=settings.presence_grace_s, tick_s=settings.presence_tick_s
            )
            await presence.start()
            stack.push_async_callback(_bounded, "presence", presence.stop)
            cursors = CursorRooms(
                hub,
                process_id=presence.process_id,
                idle_after_s=settings.cursor_idle_s,
                heartbeat_s=settings.cursor_heartbeat_s,
            )
            stack.push_async_callback(_bounded, "cursors", cursors.stop)
            event_feeds: Feeds[RoomEventFeed] = Feeds(lambda room: RoomEventFeed(hub, room))
            stack.push_async_callback(_bounded, "event_feeds", event_feeds.stop)
            documents = Replicas(
                partial(
                    DocumentReplica,
                    hub,
                    session_factory,
                    replay_updates=settings.document_replay_updates,
                ),
                grace_s=settings.document_unload_grace_s,
                still_active=partial(_active_documents, session_factory),
            )
            stack.push_async_callback(_bounded, "documents", documents.stop)
            awareness: Feeds[AwarenessFeed] = Feeds(
                partial(_awareness_feed, hub, presence.process_id, settings.awareness_tick_s)
            )
            stack.push_async_callback(_bounded, "awareness", awareness.stop)
            access_epoch = AccessEpoch()
            rechecks = Rechecks()
            stack.push_async_callback(_bounded, "rechecks", rechecks.stop)

            def document_changed(document_id: uuid.UUID | None) -> None:
                """Trashed or restored: copies of those no longer active unload (their streams
                end), memoized tickets are asked again, awareness streams are rechecked."""
                access_epoch.bump()
                documents.changed(document_id)
                key = str(document_id) if document_id is not None else None
                rechecks.spawn(
                    stream
                    for feed in awareness.all()
                    if key is None or feed.document_id == key
                    for stream in feed.audience.streams()
                )

            document_changes = Announcements(hub, "documents:changed", document_changed)
            await document_changes.start()
            stack.push_async_callback(_bounded, "document_changes", document_changes.stop)
            watch = RoomWatch(
                rooms,
                access_epoch,
                lambda room: _streams(presence.feeds.get(room)),
                lambda room: _streams(cursors.get(room)),
                lambda room: _streams(event_feeds.get(room)),
                lambda room: [s for r in documents.in_room(room) for s in r.audience.streams()],
                lambda room: [s for f in awareness.all() if f.room_id == room for s in f.audience.streams()],
                live_rooms=lambda: [
                    *presence.feeds.keys(),
                    *cursors.room_ids(),
                    *event_feeds.keys(),
                    *(r.room_id for r in documents.all() if r.room_id),
                    *(f.room_id for f in awareness.all() if f.room_id),
                ],
            )
            stack.push_async_callback(_bounded, "watch", watch.stop)
            document_log = LogWriter(engine)
            stack.push_async_callback(_bounded, "document_log", document_log.stop)
            compactor = Debouncer(
                partial(_compact_later, jobs),
                debounce_s=settings.document_compact_debounce_s,
                max_s=settings.document_compact_max_s,
            )
            # Last in, first out: pending compactions are enqueued before the jobs stop.
            stack.push_async_callback(_bounded, "compactor", compactor.flush)
            credentials = CredentialWatch(partial(_current_keys, session_factory), access_epoch)
            key_cache.on_change.append(credentials.key_changed)
            stack.push_async_callback(_bounded, "credentials", credentials.stop)
            member_changes = Announcements(hub, "members:changed", credentials.member_changed)
            await member_changes.start()
            stack.push_async_callback(_bounded, "member_changes", member_changes.stop)
            pinger = Pinger(settings.ws_keepalive_s)
            pinger.start()
            stack.push_async_callback(_bounded, "pinger", pinger.stop)
            recorder = PresenceRecorder(
                session_factory,
                interval_s=settings.presence_flush_interval_s,
                max_buffer=100_000,
                live_rooms=presence.local_rooms,
            )
            await recorder.start()
            stack.push_async_callback(_bounded, "recorder", recorder.stop)
            app.state.syncforge = AppState(
                settings=settings,
                engine=engine,
                session_factory=session_factory,
                hub=hub,
                jobs=jobs,
                redis=redis,
                keys=keys,
                usage=usage,
                rate_limits=rate_limits,
                authenticator=Authenticator(keys, session_factory, usage, rate_limits, key_cache),
                presence=presence,
                cursors=cursors,
                event_feeds=event_feeds,
                recorder=recorder,
                rooms=rooms,
                pinger=pinger,
                credentials=credentials,
                documents=documents,
                compactor=compactor,
                document_changes=document_changes,
                awareness=awareness,
                document_log=document_log,
                access_epoch=access_epoch,
                connection_rates=ConnectionLimits.rates(settings),
                member_changes=member_changes,
            )
            if settings.serves_demo:
                # The demo's organization, room, document and key: made now, on first start.
                demo = DemoRuntime(app.state.syncforge)
                stack.push_async_callback(_bounded, "demo", demo.close)
                await demo.start()
                app.state.demo = demo
            log.info("SyncForge started in %s mode", settings.mode.value)
            if settings.document_durability != "log":
                log.warning(
                    "document_durability=%s: acknowledged edits are NOT stored", settings.document_durability
                )
            if freeze_gc:
                gc.collect()
                gc.freeze()
            yield

    routes = [
        Route("/", landing.index(demo=settings.serves_demo)),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/graphql", graphql),  # any method: the view answers others with a coded 405
        WebSocketRoute("/graphql", graphql),
        Mount(GRAPHIQL_ASSETS_URL, StaticFiles(directory=GRAPHIQL_ASSETS, check_dir=False)),
        # /demo, /demo/config, /demo/token and /demo-assets exist only when the demo is on.
        *(demo_routes() if settings.serves_demo else []),
    ]
    return SyncForgeApp(
        graphql,
        routes=routes,
        lifespan=lifespan,
        middleware=[Middleware(MaxBodySize, max_bytes=settings.max_request_bytes)],
    )


SHUTDOWN_STEP_S = 15.0


async def _bounded(name: str, step: Callable[[], Awaitable[object]]) -> None:
    """One shutdown step, never more than SHUTDOWN_STEP_S: a stuck dependency (a dead Redis, a
    lock) is logged and skipped, and the rest of the shutdown still runs."""
    try:
        async with asyncio.timeout(SHUTDOWN_STEP_S):
            await step()
    except TimeoutError:
        log.error("shutdown: %s did not stop within %.0f s; abandoned", name, SHUTDOWN_STEP_S)
    except Exception:
        log.exception("shutdown: stopping %s failed", name)


async def _current_keys(session_factory: Any, key_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, KeySnapshot]:
    async with session_factory() as session:
        return {key.id: KeySnapshot.of(key) for key in await api_keys.active(session, key_ids)}


async def _active_documents(session_factory: Any, document_ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
    async with session_factory() as session:
        return await document_service.active_ids(session, document_ids)


def _awareness_feed(hub: Hub, process_id: str, tick_s: float, document_id: str) -> AwarenessFeed:
    return AwarenessFeed(hub, document_id, process_id=process_id, tick_s=tick_s)


async def _compact_later(jobs: JobQueue, document_id: str) -> None:
    await jobs.enqueue(compact_document, document_id)


def _streams(feed: Any) -> list[Any]:
    return list(feed.audience.streams()) if feed is not None else []


class SyncForgeApp(Starlette):
    """Starlette, but GraphQL WebSocket connections go straight to the GraphQL view: the
    middleware and routing frames would otherwise stay on the stack of every idle connection
    for its whole life (about 5 KiB each; the issue's budget is 25 KiB per connection)."""

    def __init__(self, graphql: GraphQLView, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._graphql = graphql

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and scope["path"] == "/graphql":
            scope["app"] = self
            await self._graphql(scope, receive, send)
            return
        await super().__call__(scope, receive, send)
