"""argon2 never runs on the event loop (a burst of sign-ins stalled every socket of the process),
and no more hashes run at once than the machine has cores."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from app.security import passwords
from tests.gql import GQL, PASSWORD, sign_up


async def test_sign_in_hashes_on_worker_threads_a_few_at_a_time(
    anon: GQL, monkeypatch: pytest.MonkeyPatch
) -> None:
    developer = await sign_up(anon)
    loop_thread = threading.get_ident()
    seen: list[int] = []
    running, most = 0, 0
    lock = threading.Lock()
    real_verify = passwords._verify

    def observed(*args: Any) -> Any:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
            seen.append(threading.get_ident())
        try:
            return real_verify(*args)
        finally:
            with lock:
                running -= 1

    monkeypatch.setattr(passwords, "_verify", observed)
    log_in = "mutation($e: String!, $p: String!) { logIn(input: {email: $e, password: $p}) { accessToken } }"
    answers = await asyncio.gather(*(anon.raw(log_in, e=developer.email, p=PASSWORD) for _ in range(8)))
    assert all(a["data"]["logIn"]["accessToken"] for a in answers)
    assert len(seen) == 8 and loop_thread not in seen
    assert most <= passwords.HASHING_CONCURRENCY
