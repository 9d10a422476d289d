"""Comments: threaded comments anchored in rooms and documents, with reactions and mentions."""

import enum
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any, Optional

import sqlalchemy as sa
from sqlmodel import Relationship

from app.db.base import InsertedAt, Timestamped, UUIDModel
from app.db.types import enum_field, fk_field, json_field, timestamp_field

if TYPE_CHECKING:
    from app.documents.models import Document
    from app.rooms.models import Room


class CommentAnchorType(enum.StrEnum):
    SELECTION = "selection"
    ELEMENT = "element"
    POSITION = "position"
    NONE = "none"


class Comment(UUIDModel, Timestamped, table=True):
    """A comment, or a reply when it has a parent, anchored to a place in a document."""

    __tablename__ = "comments"
    __table_args__ = (
        sa.Index("idx_comments_room_id", "room_id"),
        sa.Index("idx_comments_document_id", "document_id"),
        sa.Index("idx_comments_parent_id", "parent_id"),
        sa.Index(
            "idx_comments_unresolved",
            "room_id",
            postgresql_where=sa.text("resolved = false AND deleted_at IS NULL"),
            sqlite_where=sa.text("resolved = 0 AND deleted_at IS NULL"),
        ),
    )

    body: str

    # Anchor: selection {start, end, text}, element {element_id}, position {x, y, page}
    anchor_type: CommentAnchorType = enum_field(CommentAnchorType, CommentAnchorType.NONE)
    anchor_data: dict[str, Any] = json_field()

    resolved: bool = False
    resolved_at: datetime | None = timestamp_field()
    edited: bool = False
    edited_at: datetime | None = timestamp_field()
    deleted_at: datetime | None = timestamp_field()  # soft delete

    room_id: uuid.UUID = fk_field("rooms.id")
    document_id: uuid.UUID | None = fk_field("documents.id", nullable=True)
    user_id: uuid.UUID = fk_field("users.id")
    parent_id: uuid.UUID | None = fk_field("comments.id", nullable=True)
    resolved_by_id: uuid.UUID | None = fk_field("users.id", nullable=True)

    room: "Room" = Relationship(back_populates="comments", sa_relationship_kwargs={"lazy": "raise"})
    document: Optional["Document"] = Relationship(
        back_populates="comments", sa_relationship_kwargs={"lazy": "raise"}
    )
    parent: Optional["Comment"] = Relationship(
        back_populates="replies",
        sa_relationship_kwargs={"lazy": "raise", "remote_side": "Comment.id"},
    )
    # parent_id is SET NULL: deleting a comment detaches its replies.
    replies: list["Comment"] = Relationship(
        back_populates="parent", passive_deletes=True, sa_relationship_kwargs={"lazy": "raise"}
    )
    reactions: list["Reaction"] = Relationship(
        back_populates="comment",
        cascade_delete=True,
        passive_deletes=True,
        sa_relationship_kwargs={"lazy": "raise"},
    )
    mentions: list["Mention"] = Relationship(
        back_populates="comment",
        cascade_delete=True,
        passive_deletes=True,
        sa_relationship_kwargs={"lazy": "raise"},
    )


class Reaction(UUIDModel, InsertedAt, table=True):
    """An emoji reaction of a user on a comment."""

    __tablename__ = "reactions"
    # The unique (comment_id, user_id, emoji) index also serves lookups by comment.
    __table_args__ = (sa.UniqueConstraint("comment_id", "user_id", "emoji"),)

    emoji: str

    comment_id: uuid.UUID = fk_field("comments.id")
    user_id: uuid.UUID = fk_field("users.id")

    comment: "Comment" = Relationship(back_populates="reactions", sa_relationship_kwargs={"lazy": "raise"})


class Mention(UUIDModel, InsertedAt, table=True):
    """A user mentioned in a comment."""

    __tablename__ = "mentions"
    __table_args__ = (sa.Index("idx_mentions_comment_id", "comment_id"),)

    comment_id: uuid.UUID = fk_field("comments.id")
    user_id: uuid.UUID = fk_field("users.id")

    comment: "Comment" = Relationship(back_populates="mentions", sa_relationship_kwargs={"lazy": "raise"})


# Register the tables that relationships above name, whichever models module is imported first.
import app.models  # noqa: E402, F401
