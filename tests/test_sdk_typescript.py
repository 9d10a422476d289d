"""@syncforge/client in Node against a live server: presence, cursors, broadcast, documents
(two SDK clients, and the SDK with the plain Yjs peer of tests/interop), token refresh after 4403.
The tests themselves are codegen/typescript/client/test/*.test.mjs (node's test runner)."""

from __future__ import annotations

import re

import pytest

from tests.conftest import LiveServer
from tests.sdk_node import CLIENT, require_built_sdk, run_node, sdk_server

TESTS = sorted((CLIENT / "test").glob("*.test.mjs"))


@pytest.mark.timeout(300)
@pytest.mark.parametrize("test_file", TESTS, ids=[path.name for path in TESTS])
async def test_sdk_in_node(live_server: LiveServer, test_file) -> None:  # type: ignore[no-untyped-def]
    require_built_sdk()
    async with sdk_server(live_server) as sdk:
        code, out, err = await run_node(
            "--test",
            "--test-reporter=spec",
            "--test-timeout=60000",
            str(test_file),
            env=sdk.env(),
            timeout=240,
        )
    print(out)
    assert code == 0, f"node --test {test_file.name} failed:\n{out[-8000:]}\n{err[-4000:]}"
    assert re.search(r"\bfail 0\b", out), out[-4000:]
