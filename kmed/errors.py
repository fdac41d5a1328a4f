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


# Optional packages → the kmed extra that installs them (pyproject.toml [project.optional-dependencies]).
EXTRAS = {"bitsandbytes": "quant", "peft": "lora", "langchain": "langchain", "langchain_core": "langchain",
          "matplotlib": "report"}


class MissingExtraError(KmedError, ImportError):
    """An optional dependency is not installed; the fix names the kmed extra that brings it.

    Also an ``ImportError``, so code that treats a missing optional package as "feature off" still does.
    """


def require_extra(module: str, extra: str, purpose: str):
    """Import ``module`` (e.g. "peft") or raise ``MissingExtraError`` naming ``pip install 'kmed[extra]'``."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        package = module.split(".")[0]
        raise MissingExtraError(f"{purpose}에는 {package} 패키지가 필요한데 설치되어 있지 않아요.",
                                f"pip install 'kmed[{extra}]' 로 설치하세요.") from exc
