"""The SDK's version (that of the syncforge-client distribution)."""

__version__ = "0.1.0"
