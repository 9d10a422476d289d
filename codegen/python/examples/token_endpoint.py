"""Your backend's token endpoint: sign your user in your way, then mint their SyncForge token.

SYNCFORGE_SECRET_API_KEY=sk_live_... uvicorn token_endpoint:app --port 3000
"""

import os

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from syncforge_client import SyncForge


async def syncforge_token(request: Request) -> JSONResponse:
    """POST /api/syncforge-token: {"token", "expiresAt"} for the signed-in user, 401 otherwise."""
    user_id = request.headers.get("x-demo-user")  # pretend auth: use your session or JWT here
    if not user_id:
        return JSONResponse({"error": "sign in first"}, status_code=401)
    url = os.environ.get("SYNCFORGE_URL", "http://127.0.0.1:8000")
    async with SyncForge(url, secret_key=os.environ["SYNCFORGE_SECRET_API_KEY"]) as syncforge:
        minted = await syncforge.create_end_user_token(user_id, name=user_id, rooms=["team-42:*"])
    return JSONResponse({"token": minted.token, "expiresAt": minted.expires_at.isoformat()})


app = Starlette(routes=[Route("/api/syncforge-token", syncforge_token, methods=["POST"])])
