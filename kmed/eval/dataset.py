"""Reading evaluation sets: JSONL, one case per line, every bad line reported with its number."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from kmed.errors import KmedError

T = TypeVar("T")


def read_cases(path: str | Path, parse: Callable[[dict], T], shape: str) -> list[T]:
    """``parse`` turns one JSON object into a case and raises (KeyError, ValueError, …) when it is malformed."""
    path = Path(path)
    if not path.exists():
        raise KmedError(f"평가 데이터 '{path}'가 없어요.", "--data 로 JSONL 경로를 주세요.")
    cases = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            cases.append(parse(json.loads(line)))
        except (ValueError, KeyError, TypeError, AssertionError) as exc:
            raise KmedError(f"{path}:{n}번째 줄이 형식에 맞지 않아요 ({exc}).", f"각 줄은 {shape} 형식의 JSON이어야 해요.") from exc
    return cases
