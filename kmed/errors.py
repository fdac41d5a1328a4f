"""User-facing errors. The CLI prints these as plain messages (never a traceback)."""

from __future__ import annotations


class KmedError(Exception):
    """An error a user can act on: what went wrong, and the command or setting that fixes it."""

    def __init__(self, message: str, fix: str | None = None):
        self.message = message
        self.fix = fix
        super().__init__(message if not fix else f"{message}\n→ {fix}")


class IndexMissingError(KmedError):
    pass


class IndexStaleError(KmedError):
    pass


class ConfigError(KmedError):
    pass


class ModelLoadError(KmedError):
    pass
