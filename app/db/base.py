"""The declarative base of every table: naming conventions and the common columns."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlmodel import SQLModel

from app.db.types import id_field, timestamp_field

# Deterministic constraint names, so Alembic (and SQLite batch mode) can find them again.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = SQLModel.metadata


class UUIDModel(SQLModel):
    id: uuid.UUID = id_field()


class InsertedAt(SQLModel):
    inserted_at: datetime = timestamp_field(nullable=False, now=True)


class Timestamped(InsertedAt):
    updated_at: datetime = timestamp_field(nullable=False, now=True, on_update=True)
