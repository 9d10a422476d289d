"""The Python SDK for backends (codegen/python) against a live server, in the SDK's own environment.

codegen/python/tests/smoke.py runs with codegen/python/.venv (`make -C codegen/python env`), exercises every
operation of the SDK and the README's token endpoint (codegen/python/examples/token_endpoint.py), and
reports what it saw; this test checks the report and checks the server independently (the developer's view,
the minted tokens with the publishable key, the broadcast on a WebSocket). The generated code must also
match a fresh generation from schema.graphql.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
from pathlib import Path
from typing import Any

import pycrdt
import pytest

from tests.backends import IS_POSTGRES
from tests.conftest import LiveServer
from tests.gql import GQL, create_key
from tests.realtime import next_of, setup_room

SDK = Path(__file__).resolve().parents[1] / "codegen" / "python"
SDK_PYTHON = SDK / ".venv" / "bin" / "python"
ENV_COMMAND = "make -C codegen/python env"

EVENTS = "subscription($room: UUID!) { roomEvents(roomId: $room) { type payload userId } }"
VIEWER = "{ viewer { kind userId organizationId info } }"
ROOM = "query($id: UUID!) { room(id: $id) { id slug description metadata status } }"
DOCUMENT = """query($id: UUID!) { document(id: $id) {
  seq text(root: "content") shapes: json(root: "shapes") list: json(root: "list", kind: ARRAY) } }"""


def sdk_python() -> Path:
    """The SDK environment's interpreter; the test fails (not skips) without it, naming the command."""
    if not SDK_PYTHON.exists():
        pytest.fail(f"the Python SDK's environment {SDK_PYTHON} is missing: run `{ENV_COMMAND}`")
    return SDK_PYTHON


async def run_sdk(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> tuple[int, str, str]:
    """Run the SDK environment's Python (in codegen/python) without blocking the live server's loop."""
    clean = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    process = await asyncio.create_subprocess_exec(
        str(sdk_python()),
        *args,
        cwd=SDK,
        env={**clean, **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


def document_update() -> str:
    """A Yjs update (base64) such as a backend would write: Text, Map and Array roots."""
    doc = pycrdt.Doc()
    text = doc.get("content", type=pycrdt.Text)
    shapes = doc.get("shapes", type=pycrdt.Map)
    items = doc.get("list", type=pycrdt.Array)
    with doc.transaction():
        text += "Hello from the SDK"
        shapes["rect"] = {"x": 1, "w": 2}
        items.append("one")
    return base64.b64encode(doc.get_update()).decode()


async def test_generated_code_matches_the_schema() -> None:
    """codegen/python/syncforge_client/generated/ is what ariadne-codegen makes of schema.graphql now."""
    code, stdout, stderr = await run_sdk("generate.py", "--check", timeout=120)
    assert code == 0, f"{stdout}{stderr}\n(regenerate: make -C codegen/python generate)"


async def test_python_sdk_against_a_live_server(live_server: LiveServer, session_factory) -> None:  # type: ignore[no-untyped-def]
    setup = await setup_room(live_server, session_factory)
    secret = setup.backend.headers["authorization"].removeprefix("Bearer ")
    limited, _ = await create_key(setup.dev, setup.org_id, "SECRET", rateLimit=1)
    async with setup.client("watcher") as watcher:
        events = await watcher.subscribe(EVENTS, {"room": setup.room_id})
        await asyncio.sleep(0.3)  # ephemeral: only subscriptions already running receive an event
        code, stdout, stderr = await run_sdk(
            "tests/smoke.py",
            env={
                "SYNCFORGE_URL": live_server.url,
                "SYNCFORGE_SECRET_API_KEY": secret,
                "SYNCFORGE_LIMITED_API_KEY": limited,
                "SYNCFORGE_BROADCAST_ROOM": setup.room_id,
                "SYNCFORGE_DOCUMENT_UPDATE": document_update(),
            },
        )
        assert code == 0, f"smoke.py failed ({code}):\n{stderr}\n{stdout}"
        facts: dict[str, Any] = json.loads(stdout)
        # The backend's broadcast (secret key, over HTTP) reached a browser's subscription.
        event = (await next_of(watcher, events))["roomEvents"]
    assert (event["type"], event["payload"]) == ("deploy", {"version": "1.4"})
    assert facts["broadcast"] is True

    assert facts["health"] == {"ok": True, "mode": "production" if IS_POSTGRES else "embedded"}
    assert facts["viewer"] == {"kind": "secret_key", "organization_id": setup.org_id}

    rooms = facts["rooms"]
    assert (rooms["slug"], rooms["status"], rooms["metadata"]) == ("team-42:design", "ACTIVE", {"team": 42})
    assert rooms["by_id"] == [rooms["id"], "team-42:design", 0] and rooms["by_slug"] == rooms["id"]
    assert rooms["updated"] == ["Design", "Design reviews"]  # only the fields given changed
    # One room per page: the fixture's room, then the two the SDK made (oldest first).
    assert rooms["pages"] == 3 and rooms["slugs"][1:] == ["team-42:design", "other:room"]
    developer = setup.dev.gql
    stored = (await developer.data(ROOM, id=rooms["id"]))["room"]
    expected = {"slug": "team-42:design", "description": "Design reviews", "metadata": {"team": 42}}
    assert stored == {"id": rooms["id"], "status": "ACTIVE", **expected}
    assert facts["unarchived"] == "ACTIVE" and facts["deleted"] is True
    assert (await developer.error(ROOM, id=rooms["other_id"]))["extensions"]["code"] == "NOT_FOUND"

    documents = facts["documents"]
    assert documents["created_seq"] == 0  # then the backend's update was acknowledged as seq 1
    assert documents["ack_seq"] == documents["seq"] == documents["sync_seq"] == 1
    assert documents["text"] == "Hello from the SDK"
    assert documents["json"] == {"rect": {"x": 1, "w": 2}}
    assert documents["by_slug"] == [documents["id"], "", ["one"]]  # an absent root reads as ""
    assert documents["listed"] == ["Spec"] and documents["sync_has_update"] is True
    read = (await developer.data(DOCUMENT, id=documents["id"]))["document"]
    assert read == {
        "seq": 1,
        "text": "Hello from the SDK",
        "shapes": {"rect": {"x": 1, "w": 2}},
        "list": ["one"],
    }

    # The minted tokens work as the README says browsers use them: publishable key plus token.
    anonymous = setup.backend.with_headers()  # the same HTTP client, without credentials

    def browser(token: str) -> GQL:
        return anonymous.bearer(token, **{"x-api-key": setup.publishable})

    ada = browser(facts["token"]["token"])
    viewer = (await ada.data(VIEWER))["viewer"]
    assert viewer == {
        "kind": "end_user",
        "userId": "user-7",
        "organizationId": setup.org_id,
        "info": {"name": "Ada", "color": "#3355ff", "avatar": None},
    }
    assert (await ada.data(ROOM, id=rooms["id"]))["room"]["slug"] == "team-42:design"  # granted: team-42:*
    refused = await ada.error(ROOM, id=setup.room_id)  # not granted
    assert refused["extensions"]["code"] == "NOT_FOUND", refused
    without_key = await anonymous.bearer(facts["token"]["token"]).error(VIEWER)
    assert without_key["extensions"]["code"] == "UNAUTHORIZED"

    endpoint = facts["token_endpoint"]
    assert (endpoint["anonymous_status"], endpoint["status"]) == (401, 200)
    user9 = browser(endpoint["body"]["token"])
    viewer = (await user9.data(VIEWER))["viewer"]
    assert (viewer["kind"], viewer["userId"], viewer["info"]["name"]) == ("end_user", "user-9", "user-9")
    assert (await user9.data(ROOM, id=rooms["id"]))["room"]["id"] == rooms["id"]

    errors = facts["errors"]
    assert facts["no_grants"].startswith("create_end_user_token: give rooms")

    def seen(name: str) -> tuple[Any, ...]:
        error = errors[name]
        return error["code"], error["field"], error["reason"]

    assert seen("unknown_room") == ("NOT_FOUND", None, None) and errors["unknown_room"]["has_request_id"]
    assert errors["unknown_room"]["message"] == "room not found"
    assert seen("deleted_room") == ("NOT_FOUND", None, None)
    assert seen("archived_broadcast") == ("FORBIDDEN", None, "ARCHIVED")
    assert seen("bad_slug") == ("VALIDATION_ERROR", "slug", None)
    assert seen("taken_slug") == ("CONFLICT", "slug", None)
    assert seen("short_ttl") == ("VALIDATION_ERROR", "ttlSeconds", None)
    assert seen("bad_key") == ("UNAUTHORIZED", None, None)
    rate_limited = errors["rate_limited"]
    assert (rate_limited["code"], rate_limited["status_code"]) == ("RATE_LIMITED", 429)
    assert rate_limited["retry_after"] is not None and 0 < rate_limited["retry_after"] <= 60
    assert errors["unreachable"]["code"] == "NETWORK_ERROR"
