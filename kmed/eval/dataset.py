"""Reading evaluation sets: JSONL, one case per line, every bad line reported with its number."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from kmed.artifacts import read_jsonl

T = TypeVar("T")


def read_cases(path: str | Path, parse: Callable[[dict], T], shape: str) -> list[T]:
    """``parse`` turns one JSON object into a case and raises (KeyError, ValueError, …) when it is malformed."""
    return read_jsonl(path, parse, shape, "--data 로 평가 데이터 JSONL 경로를 주세요.")
