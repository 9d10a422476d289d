"""Database access: engine, sessions, unit of work and shared column types."""

from app.db.engine import create_engine, create_session_factory
from app.db.unit_of_work import UnitOfWork

__all__ = ["UnitOfWork", "create_engine", "create_session_factory"]
