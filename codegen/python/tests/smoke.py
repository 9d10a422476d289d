"""The SDK against a live server: run by the server suite's tests/test_python_sdk.py with this .venv.

Environment: SYNCFORGE_URL, SYNCFORGE_SECRET_API_KEY (sk_live_...), SYNCFORGE_LIMITED_API_KEY (a secret key
of rate limit 1/minute), SYNCFORGE_BROADCAST_ROOM (a room id the caller listens to) and
SYNCFORGE_DOCUMENT_UPDATE (a base64 Yjs update: Text "content", Map "shapes", Array "list").
Prints one JSON object of what it saw; the caller checks it, and checks the server independently.
Anything unexpected (an SDK error, a wrong type) ends it with a traceback and a non-zero exit.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections.abc import Awaitable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from syncforge_client import (
    CreateDocumentInput,
    CreateRoomInput,
    RoomFields,
    RoomStatus,
    SharedTypeKind,
    SyncForge,
    SyncForgeError,
    UpdateRoomInput,
)

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


async def expect_error(call: Awaitable[object]) -> dict[str, Any]:
    """Await `call` (a coroutine) that must raise SyncForgeError; what the error carried."""
    try:
        await call
    except SyncForgeError as error:
        assert str(error).startswith(error.code), str(error)
        return {
            "code": error.code,
            "message": error.message,
            "field": error.field,
            "reason": error.reason,
            "retry_after": error.retry_after,
            "has_request_id": error.request_id is not None,
            "status_code": error.status_code,
        }
    raise AssertionError("expected a SyncForgeError")


async def all_room_slugs(syncforge: SyncForge, organization_id: str) -> tuple[list[str], int]:
    """Every room's slug, one room per page; and how many pages it took."""
    slugs: list[str] = []
    after: str | None = None
    pages = 0
    while True:
        page = await syncforge.rooms(organization_id, first=1, after=after)
        pages += 1
        slugs += [edge.node.slug for edge in page.edges]
        if not page.page_info.has_next_page:
            return slugs, pages
        after = page.page_info.end_cursor


async def token_endpoint(url: str, secret_key: str) -> dict[str, Any]:
    """Drive examples/token_endpoint.py's app (in this process, over ASGI) as a browser would."""
    os.environ["SYNCFORGE_URL"] = url
    os.environ["SYNCFORGE_SECRET_API_KEY"] = secret_key
    sys.path.insert(0, str(EXAMPLES))
    from token_endpoint import app  # type: ignore[import-not-found,unused-ignore]

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://backend") as browser:
        anonymous = await browser.post("/api/syncforge-token")
        signed_in = await browser.post("/api/syncforge-token", headers={"x-demo-user": "user-9"})
    body = signed_in.json()
    assert isinstance(datetime.fromisoformat(body["expiresAt"]), datetime)
    return {"anonymous_status": anonymous.status_code, "status": signed_in.status_code, "body": body}


async def main() -> dict[str, Any]:
    """Exercise every operation of the SDK once; the facts for the caller."""
    url = os.environ["SYNCFORGE_URL"]
    secret_key = os.environ["SYNCFORGE_SECRET_API_KEY"]
    facts: dict[str, Any] = {}
    async with SyncForge(url, secret_key=secret_key) as syncforge:
        health = await syncforge.health()
        facts["health"] = {"ok": health.ok, "mode": health.mode}
        viewer = await syncforge.viewer()
        facts["viewer"] = {"kind": viewer.kind, "organization_id": viewer.organization_id}
        org_id = await syncforge.organization_id()

        room = await syncforge.create_room(
            org_id, CreateRoomInput(name="Design", slug="team-42:design", metadata={"team": 42})
        )
        assert isinstance(room, RoomFields) and isinstance(room.created_at, datetime)
        other = await syncforge.create_room(org_id, CreateRoomInput(name="Other", slug="other:room"))
        by_id = await syncforge.room(id=room.id)
        by_slug = await syncforge.room(organization_id=org_id, slug="team-42:design")
        updated = await syncforge.update_room(room.id, UpdateRoomInput(description="Design reviews"))
        slugs, pages = await all_room_slugs(syncforge, org_id)
        facts["rooms"] = {
            "id": room.id,
            "other_id": other.id,
            "slug": room.slug,
            "status": room.status.value,
            "metadata": room.metadata,
            "by_id": [by_id.id, by_id.slug, by_id.participant_count],
            "by_slug": by_slug.id,
            "updated": [updated.name, updated.description],
            "slugs": slugs,
            "pages": pages,
        }

        document = await syncforge.create_document(room.id, CreateDocumentInput(name="Spec", slug="spec"))
        ack = await syncforge.apply_document_update(
            document.id, os.environ["SYNCFORGE_DOCUMENT_UPDATE"], origin="smoke"
        )
        read = await syncforge.document(id=document.id, json_root="shapes")
        by_doc_slug = await syncforge.document(
            room_id=room.id,
            slug="spec",
            text_root="nothing",
            json_root="list",
            json_kind=SharedTypeKind.ARRAY,
        )
        listed = await syncforge.documents(room.id)
        synced = await syncforge.document_sync(document.id)
        facts["documents"] = {
            "id": document.id,
            "created_seq": document.seq,
            "ack_seq": ack.seq,
            "text": read.text,
            "json": read.json_,
            "seq": read.seq,
            "by_slug": [by_doc_slug.id, by_doc_slug.text, by_doc_slug.json_],
            "listed": [edge.node.name for edge in listed.edges],
            "sync_seq": synced.seq,
            "sync_has_update": bool(synced.update),
        }

        minted = await syncforge.create_end_user_token(
            "user-7", name="Ada", color="#3355ff", rooms=["team-42:*"], access=["read", "presence"]
        )
        assert isinstance(minted.expires_at, datetime)
        facts["token"] = {"token": minted.token, "end_user_id": minted.end_user_id}
        facts["token_endpoint"] = await token_endpoint(url, secret_key)

        facts["broadcast"] = await syncforge.broadcast_event(
            os.environ["SYNCFORGE_BROADCAST_ROOM"], "deploy", {"version": "1.4"}
        )

        archived = await syncforge.archive_room(other.id)
        assert archived.status is RoomStatus.ARCHIVED and isinstance(archived.archived_at, datetime)
        facts["errors"] = {
            "archived_broadcast": await expect_error(syncforge.broadcast_event(other.id, "x", {})),
        }
        facts["unarchived"] = (await syncforge.unarchive_room(other.id)).status.value
        facts["deleted"] = await syncforge.delete_room(other.id)
        facts["errors"].update(
            {
                "deleted_room": await expect_error(syncforge.room(id=other.id)),
                "unknown_room": await expect_error(syncforge.room(id=str(uuid.uuid4()))),
                "bad_slug": await expect_error(
                    syncforge.create_room(org_id, CreateRoomInput(name="Bad", slug="Not A Slug"))
                ),
                "taken_slug": await expect_error(
                    syncforge.create_room(org_id, CreateRoomInput(name="Again", slug="team-42:design"))
                ),
                "short_ttl": await expect_error(
                    syncforge.create_end_user_token("user-7", rooms=["team-42:*"], ttl_seconds=1)
                ),
            }
        )
        try:
            await syncforge.create_end_user_token("user-7")
        except ValueError as error:
            facts["no_grants"] = str(error)

    async with SyncForge(url, secret_key="sk_live_" + "x" * 40) as wrong_key:
        facts["errors"]["bad_key"] = await expect_error(wrong_key.rooms(org_id))
    async with SyncForge(url, secret_key=os.environ["SYNCFORGE_LIMITED_API_KEY"]) as limited:
        await limited.viewer()
        facts["errors"]["rate_limited"] = await expect_error(limited.viewer())
    async with SyncForge("http://127.0.0.1:9/", secret_key=secret_key, timeout=2) as nowhere:
        facts["errors"]["unreachable"] = await expect_error(nowhere.health())
    return facts


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main())))
