"""Every table of every domain: `import app.models` registers them all on SQLModel.metadata."""

from sqlmodel import SQLModel

from app.accounts.credentials_models import (
    EmailMessage,
    OAuthState,
    RecoveryCode,
    RefreshToken,
    UserToken,
)
from app.accounts.end_user_models import EndUser
from app.accounts.models import ApiKey, Invitation, Membership, Organization, User
from app.analytics.models import ConnectionLog, RoomAnalytics
from app.audit.models import AuditLog
from app.comments.models import Comment, Mention, Reaction
from app.documents.models import Document, DocumentUpdate, Snapshot
from app.events.models import OutboxEvent
from app.notifications.models import Notification
from app.rooms.models import Participant, Room
from app.voice.models import VoiceParticipant, VoiceSession
from app.webhooks.models import Webhook, WebhookDelivery

# In dependency order: a table comes after the tables it references.
ALL_MODELS: tuple[type[SQLModel], ...] = (
    Organization,
    User,
    Membership,
    Invitation,
    ApiKey,
    EndUser,
    RefreshToken,
    UserToken,
    RecoveryCode,
    OAuthState,
    EmailMessage,
    Webhook,
    Room,
    Participant,
    Document,
    Snapshot,
    DocumentUpdate,
    Comment,
    Reaction,
    Mention,
    Notification,
    VoiceSession,
    VoiceParticipant,
    WebhookDelivery,
    RoomAnalytics,
    ConnectionLog,
    AuditLog,
    OutboxEvent,
)

ALL_TABLES: tuple[str, ...] = tuple(str(model.__tablename__) for model in ALL_MODELS)

__all__ = [
    "ALL_MODELS",
    "ALL_TABLES",
    "ApiKey",
    "AuditLog",
    "Comment",
    "ConnectionLog",
    "Document",
    "DocumentUpdate",
    "EmailMessage",
    "EndUser",
    "Invitation",
    "Membership",
    "Mention",
    "Notification",
    "OAuthState",
    "Organization",
    "OutboxEvent",
    "Participant",
    "Reaction",
    "RecoveryCode",
    "RefreshToken",
    "Room",
    "RoomAnalytics",
    "Snapshot",
    "User",
    "UserToken",
    "VoiceParticipant",
    "VoiceSession",
    "Webhook",
    "WebhookDelivery",
]
