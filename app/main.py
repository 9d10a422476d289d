"""The ASGI application: `create_app(settings)` builds it; the lifespan builds what it holds."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import RedirectResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

from app.auth.authenticate import Authenticator
from app.auth.rate_limit import RateLimits
from app.auth.usage import UsageRecorder
from app.cursors.batcher import CursorBatcher
from app.db import create_engine, create_session_factory
from app.graphql.schema import build_schema
from app.graphql.view import GRAPHIQL_ASSETS, GRAPHIQL_ASSETS_URL, GraphQLView
from app.health import healthz, readyz
from app.presence.recorder import PresenceRecorder
from app.presence.service import PresenceService
from app.realtime.hub import Hub
from app.realtime.presence_registry import MemoryPresenceRegistry, RedisPresenceRegistry
from app.request_limits import MaxBodySize
from app.security.keys import load_keys
from app.settings import Settings, load_settings
from app.state import AppState
from workers.broker import JobQueue
from workers.scheduler import build_scheduler

log = logging.getLogger("syncforge")


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or load_settings()
    keys = load_keys(settings)
    graphql = GraphQLView(build_schema(settings))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            engine = create_engine(settings)
            stack.push_async_callback(engine.dispose)
            hub = Hub.from_settings(settings)
            await hub.start()
            stack.push_async_callback(hub.stop)
            redis = (
                aioredis.from_url(
                    settings.redis_url,
                    # After a Redis restart, pooled connections are dead: retry on a fresh one.
                    retry=Retry(ExponentialBackoff(cap=1.0), 3),
                    retry_on_error=[RedisConnectionError, RedisTimeoutError],
                    health_check_interval=10,
                )
                if settings.redis_url
                else None
            )
            if redis is not None:
                stack.push_async_callback(redis.aclose)
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
            stack.push_async_callback(usage.stop)
            rate_limits = RateLimits(settings)
            stack.push_async_callback(rate_limits.close)
            registry = (
                RedisPresenceRegistry(redis, settings.redis_namespace) if redis else MemoryPresenceRegistry()
            )
            presence = PresenceService(registry, hub, grace_s=settings.presence_grace_s)
            await presence.start()
            stack.push_async_callback(presence.stop)
            cursors = CursorBatcher(hub, idle_after_s=settings.cursor_idle_s)
            stack.push_async_callback(cursors.stop)
            recorder = PresenceRecorder(
                session_factory,
                interval_s=settings.presence_flush_interval_s,
                max_buffer=100_000,
                live_rooms=presence.local_rooms,
            )
            await recorder.start()
            stack.push_async_callback(recorder.stop)
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
                authenticator=Authenticator(keys, session_factory, usage, rate_limits),
                presence=presence,
                cursors=cursors,
                recorder=recorder,
            )
            log.info("SyncForge started in %s mode", settings.mode.value)
            yield

    async def index(request: object) -> RedirectResponse:
        return RedirectResponse("/graphql")

    routes = [
        Route("/", index),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/graphql", graphql, methods=["GET", "POST"]),
        WebSocketRoute("/graphql", graphql),
        Mount(GRAPHIQL_ASSETS_URL, StaticFiles(directory=GRAPHIQL_ASSETS, check_dir=False)),
    ]
    return Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[Middleware(MaxBodySize, max_bytes=settings.max_request_bytes)],
    )
