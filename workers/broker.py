"""Build the Dramatiq broker that settings ask for and bind the declared jobs to it.

Production: Redis broker, consumed by `syncforge worker` processes. Embedded default: a stub
(in-memory) broker consumed by a worker running inside the API process.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
from collections.abc import Awaitable, Callable
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import AsyncIO

from app.settings import Settings
from workers.registry import JOBS, JobSpec, job_name
from workers.runtime import WorkerRuntime

# Modules whose import declares jobs; later domains add theirs here.
JOB_MODULES = ("workers.maintenance", "workers.email", "workers.rooms", "workers.documents")


class JobQueue:
    """The app's handle on the broker: enqueue a declared job by its function."""

    def __init__(self, settings: Settings) -> None:
        for module in JOB_MODULES:
            importlib.import_module(module)
        self.settings = settings
        self.runtime = WorkerRuntime(settings)
        self.broker: dramatiq.Broker = _make_broker(settings)
        self.actors: dict[str, dramatiq.Actor[..., Any]] = {
            spec.name: _bind(spec, self.broker, self.runtime) for spec in JOBS.values()
        }

    @property
    def is_embedded(self) -> bool:
        return isinstance(self.broker, StubBroker)

    async def enqueue(self, fn: Callable[..., Awaitable[Any]], *args: Any, **options: Any) -> None:
        actor = self.actors[job_name(fn)]
        if self.is_embedded:
            actor.send_with_options(args=args, **options)
        else:
            # The Redis broker's client is synchronous: keep the event loop free while it talks.
            await asyncio.to_thread(actor.send_with_options, args=args, **options)

    def start_worker(self, threads: int | None = None) -> dramatiq.Worker:
        worker = dramatiq.Worker(
            self.broker, worker_threads=threads or self.settings.worker_threads, worker_timeout=100
        )
        worker.start()
        return worker

    def close(self) -> None:
        self.broker.close()


def _make_broker(settings: Settings) -> dramatiq.Broker:
    broker: dramatiq.Broker
    if settings.redis_url:
        broker = RedisBroker(url=settings.redis_url, namespace=f"{settings.redis_namespace}:jobs")
    else:
        broker = StubBroker()
        broker.emit_after("process_boot")
    broker.add_middleware(AsyncIO())
    return broker


def _bind(spec: JobSpec, broker: dramatiq.Broker, runtime: WorkerRuntime) -> dramatiq.Actor[..., Any]:
    @functools.wraps(spec.fn)
    async def run(*args: Any) -> None:
        # Results are for callers that run a job directly; Dramatiq has no result backend here.
        await spec.fn(runtime, *args)

    return dramatiq.Actor(
        run,
        broker=broker,
        actor_name=spec.name,
        queue_name=spec.queue,
        priority=0,
        options=spec.options,
    )
