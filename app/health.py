"""Dependency checks for /readyz and the `health` query, and the plain probe routes."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import JSONResponse

from app import __version__
from app.state import AppState

CHECK_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class DependencyStatus:
    name: str
    ok: bool
    latency_ms: float
    error: str | None = None


async def _timed(name: str, check: asyncio.Future[object] | object) -> DependencyStatus:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(check, CHECK_TIMEOUT_S)  # type: ignore[arg-type]
    except Exception as exc:  # any failure means "not ready"; the reason is reported, not raised
        error = f"{type(exc).__name__}: {exc}".strip().rstrip(":") or type(exc).__name__
        return DependencyStatus(name, False, _ms(started), error[:200])
    return DependencyStatus(name, True, _ms(started))


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


async def _ping_database(state: AppState) -> None:
    async with state.engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


async def check_dependencies(state: AppState) -> list[DependencyStatus]:
    checks = [_timed("database", _ping_database(state))]
    if state.redis is not None:
        checks.append(_timed("redis", state.redis.ping()))
    return list(await asyncio.gather(*checks))


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok", "version": __version__})


async def readyz(request: Request) -> JSONResponse:
    state: AppState = request.app.state.syncforge
    statuses = await check_dependencies(state)
    failing = [s.name for s in statuses if not s.ok]
    body = {
        "status": "ready" if not failing else "unavailable",
        "mode": state.settings.mode.value,
        "failing": failing,
        "dependencies": {s.name: {"ok": s.ok, "latencyMs": s.latency_ms, "error": s.error} for s in statuses},
    }
    return JSONResponse(body, status_code=503 if failing else 200)
