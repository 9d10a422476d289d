"""Email verification and password reset: single-use, expiring tokens sent by email."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import quote

from app.accounts.credentials_models import UserToken, UserTokenPurpose
from app.accounts.models import User
from app.db import UnitOfWork
from app.db.types import utcnow
from app.email.outbox import queue_email
from app.security.tokens import hash_token, new_token
from app.state import AppState


async def send_verification(state: AppState, uow: UnitOfWork, user: User) -> None:
    token = new_token()
    ttl = timedelta(hours=state.settings.email_verification_ttl_h)
    uow.session.add(
        UserToken(
            user_id=user.id,
            purpose=UserTokenPurpose.VERIFY_EMAIL,
            token_hash=hash_token(token),
            expires_at=utcnow() + ttl,
        )
    )
    link = f"{state.settings.public_url}/verify-email?token={quote(token)}"
    await queue_email(
        uow,
        state.jobs,
        to=user.email,
        subject="Verify your SyncForge email address",
        body=(
            f"Hello{' ' + user.name if user.name else ''},\n\n"
            f"Confirm this address by opening:\n{link}\n\n"
            f"Or run the verifyEmail mutation with this token:\n{token}\n\n"
            f"The link expires in {state.settings.email_verification_ttl_h} hours."
        ),
    )
