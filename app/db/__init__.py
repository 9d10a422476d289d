"""Database access: engine, sessions, unit of work and shared column types."""

from app.db.engine import create_engine, create_session_factory
from app.db.unit_of_work import UnitOfWork, active_session, reading_session

__all__ = ["UnitOfWork", "active_session", "create_engine", "create_session_factory", "reading_session"]
