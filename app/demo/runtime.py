"""What a process serving the demo holds: the seeded ids and key, and the token endpoint's limit.

The seed runs in the app's lifespan (see app/main.py), so a started process is ready to serve
the demo. If it fails there (the database is down, or not migrated yet), the process still
starts (the API, /healthz and /readyz do not depend on the demo): the failure is logged and the
demo's endpoints answer 503 and try again on their next request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from app.auth.rate_limit import RateLimits
from app.demo import seed as demo_seed
from app.demo.seed import DemoSeed
from app.errors import RateLimited, Unavailable
from app.state import AppState

log = logging.getLogger("syncforge.demo")

SEED_TIMEOUT_S = 15.0  # a start waits this long for the seed at most (a stuck database)
RETRY_AFTER_S = 5.0  # what a request told "not ready" is asked to wait


class DemoRuntime:
    def __init__(self, state: AppState) -> None:
        self.state = state
        self._seed: DemoSeed | None = None
        self._seeding = asyncio.Lock()
        # The project's limiter, on counters of their own (their own key prefix in Redis): the
        # token endpoint's limit per address, whatever SYNCFORGE_IP_RATE_LIMIT is.
        settings = state.settings
        self._token_limits = RateLimits(
            settings.model_copy(
                update={
                    "ip_rate_limit": settings.demo_token_rate_limit,
                    "redis_namespace": f"{settings.redis_namespace}:demo",
                }
            )
        )

    async def start(self) -> None:
        """Seed now; a failure is logged (and retried by the next request), never raised."""
        with contextlib.suppress(Unavailable):
            await self.seeded()

    async def close(self) -> None:
        await self._token_limits.close()

    async def seeded(self) -> DemoSeed:
        """The demo's rows, seeded on the first call (one at a time); Unavailable if that fails."""
        if self._seed is not None:
            return self._seed
        async with self._seeding:
            if self._seed is None:
                try:
                    async with asyncio.timeout(SEED_TIMEOUT_S):
                        self._seed = await demo_seed.seed(self.state.session_factory, self.state.keys)
                except Exception as error:
                    log.exception("demo: seeding the demo organization failed; /demo is unavailable")
                    raise Unavailable(
                        "the demo is not ready; try again shortly", retry_after=RETRY_AFTER_S
                    ) from error
                log.info(
                    "demo: serving /demo (organization %s, room %s)",
                    demo_seed.ORGANIZATION_SLUG,
                    demo_seed.ROOM_SLUG,
                )
        return self._seed

    def forget(self) -> None:
        """The seeded rows are gone (deleted by hand): seed again on the next request."""
        self._seed = None

    async def hit_token_limit(self, ip: str) -> None:
        try:
            await self._token_limits.hit_ip(ip)
        except RateLimited as error:
            raise RateLimited(
                "too many demo tokens requested from this address", retry_after=error.extensions["retryAfter"]
            ) from None
