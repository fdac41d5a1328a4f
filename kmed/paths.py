"""Where kmed finds its data: the shipped KB, built indexes and user models.

Defaults resolve relative to the project root (the folder holding ``data/kb``), so the CLI works
from any working directory inside a checkout; environment variables override them.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = PACKAGE_DIR.parent


def default_kb_dir() -> Path:
    return Path(os.environ.get("KMED_KB_DIR", PROJECT_ROOT / "data" / "kb"))


def default_index_dir() -> Path:
    return Path(os.environ.get("KMED_INDEX_DIR", PROJECT_ROOT / "indexes"))


def default_processed_dir() -> Path:
    return Path(os.environ.get("KMED_PROCESSED_DIR", PROJECT_ROOT / "data" / "processed"))


def default_retrieval_config() -> Path:
    return Path(os.environ.get("KMED_RETRIEVAL_CONFIG", PROJECT_ROOT / "configs" / "retrieval.yaml"))
