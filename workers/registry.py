"""Job declarations that are bound to a broker only when one is built from settings.

`dramatiq.actor` binds to a global broker at import time; we need the broker chosen by settings
(Redis in production, an in-process stub in the embedded default), so jobs are declared here first.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Concatenate, ParamSpec

from workers.runtime import WorkerRuntime

P = ParamSpec("P")
JobFunction = Callable[Concatenate[WorkerRuntime, P], Awaitable[Any]]


@dataclass(frozen=True)
class JobSpec:
    name: str
    fn: Callable[..., Awaitable[Any]]
    queue: str
    options: dict[str, Any] = field(default_factory=dict)


JOBS: dict[str, JobSpec] = {}


def job(*, queue: str = "default", **options: Any) -> Callable[[JobFunction[P]], JobFunction[P]]:
    """Declare an async job; its first parameter is the WorkerRuntime, the rest are message args."""

    def register(fn: JobFunction[P]) -> JobFunction[P]:
        name = f"{fn.__module__.rsplit('.', 1)[-1]}.{fn.__name__}"
        JOBS[name] = JobSpec(name=name, fn=fn, queue=queue, options=options)
        fn.job_name = name  # type: ignore[attr-defined]
        return fn

    return register


def job_name(fn: Callable[..., Any]) -> str:
    return fn.job_name  # type: ignore[attr-defined,no-any-return]
