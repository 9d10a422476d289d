"""SyncForge: a self-hostable real-time collaboration backend."""

__version__ = "0.1.0"
