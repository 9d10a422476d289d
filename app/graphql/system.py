"""Service health, as a query and as a subscription (live status in GraphiQL or a dashboard)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

import strawberry

from app import __version__
from app.errors import ValidationFailed
from app.graphql.context import Info
from app.health import DependencyStatus, check_dependencies


@strawberry.type(name="DependencyStatus")
class DependencyStatusType:
    name: str
    ok: bool
    latency_ms: float
    error: str | None


@strawberry.type
class Health:
    ok: bool
    version: str
    mode: str
    dependencies: list[DependencyStatusType]


async def _health(info: Info) -> Health:
    state = info.context.state
    statuses: list[DependencyStatus] = await check_dependencies(state)
    return Health(
        ok=all(s.ok for s in statuses),
        version=__version__,
        mode=state.settings.mode.value,
        dependencies=[
            DependencyStatusType(name=s.name, ok=s.ok, latency_ms=s.latency_ms, error=s.error)
            for s in statuses
        ],
    )


@strawberry.type
class SystemQuery:
    @strawberry.field(description="The service's health and that of its dependencies.")
    async def health(self, info: Info) -> Health:
        return await _health(info)


@strawberry.type
class SystemSubscription:
    @strawberry.subscription(description="The service's health, sent every `intervalMs`.")
    async def health(self, info: Info, interval_ms: int = 1000) -> AsyncGenerator[Health, None]:
        if not 100 <= interval_ms <= 60_000:
            raise ValidationFailed("intervalMs must be between 100 and 60000", field="intervalMs")
        while True:
            yield await _health(info)
            await asyncio.sleep(interval_ms / 1000)
