"""Built artifacts on disk: atomic folder swaps, manifests and file hashes (ground floor).

    with atomic_folder(Path("indexes/triage")) as tmp:   # build into tmp; swapped in on success
        (tmp / "model.npz").write_bytes(...)
        write_manifest(tmp, {"inputs": {...}})

    write_jsonl(Path("kg_edges/dur.jsonl"), edges)     # one file: a temp sibling renamed over it
    rows = read_jsonl(path, parse, '{"text": …}')       # every bad line named with its file and number
    data = read_yaml_config(None, Path("configs/retrieval.yaml"))  # {} when the default is absent

A failed build leaves the previous folder or file untouched; a reader never sees half of one.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO, TypeVar

from kmed.errors import ConfigError, KmedError

MANIFEST = "manifest.json"
T = TypeVar("T")


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def files_sha256(paths: list[Path]) -> dict[str, str]:
    return {p.name: file_sha256(p) for p in sorted(paths)}


def swap_in(tmp: Path, folder: Path) -> None:
    """Replace ``folder`` by ``tmp`` with two renames; the old folder is removed afterwards."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    old = folder.parent / f".{folder.name}.old-{os.getpid()}"
    if folder.exists():
        os.replace(folder, old)
    os.replace(tmp, folder)
    shutil.rmtree(old, ignore_errors=True)


@contextmanager
def atomic_folder(folder: Path) -> Iterator[Path]:
    """A temporary sibling of ``folder`` to build into; swapped in only when the block succeeds."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.tmp-", dir=folder.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    swap_in(tmp, folder)


def write_manifest(folder: Path, manifest: dict) -> None:
    (Path(folder) / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")


def read_manifest(folder: Path) -> dict | None:
    """The folder's manifest, or None when it is missing or unreadable."""
    try:
        return json.loads((Path(folder) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


@contextmanager
def atomic_file(path: Path) -> Iterator[TextIO]:
    """A UTF-8 text handle on a temporary sibling of ``path``, renamed over it when the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            yield handle
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def write_jsonl(path: Path, rows: Iterable[dict]) -> int:
    """Write one JSON object a line (atomically, see ``atomic_file``); returns how many."""
    count = 0
    with atomic_file(path) as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    return count


def read_jsonl(path: str | Path, parse: Callable[[dict], T], shape: str,
               missing_hint: str = "--data 로 JSONL 경로를 주세요.") -> list[T]:
    """One ``parse``d row per non-empty line. ``parse`` raises (KeyError, ValueError, TypeError,
    AssertionError) on a malformed row; the error names the file, the line and the expected ``shape``."""
    path = Path(path)
    if not path.is_file():
        raise KmedError(f"'{path}' 파일이 없어요.", missing_hint)
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(parse(json.loads(line)))
        except (ValueError, KeyError, TypeError, AssertionError, AttributeError) as exc:
            raise KmedError(f"{path}:{n}번째 줄이 형식에 맞지 않아요 ({exc}).", f"각 줄은 {shape} 형식의 JSON이어야 해요.") from exc
    return rows


def read_jsonl_lines(path: str | Path, parse: Callable[[dict, int], T]) -> tuple[list[T], list[str]]:
    """Every non-empty line of ``path`` parsed by ``parse(row, line_no)``, and one ``"path:line: why"``
    for each line that is not JSON or that ``parse`` rejects with a ``ValueError``, so a file's every
    bad line can be reported at once (``line_errors``)."""
    rows, errors = [], []
    with open(path, encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                rows.append(parse(json.loads(line), line_no))
            except json.JSONDecodeError as exc:
                errors.append(f"{path}:{line_no}: JSON이 아니에요 ({exc.msg})")
            except ValueError as exc:
                errors.append(f"{path}:{line_no}: {exc}")
    return rows, errors


def line_errors(errors: list[str], shown: int = 10) -> str:
    """The first ``shown`` bad-line messages, one a line, and how many more there are."""
    more = f"\n… 외 {len(errors) - shown}개" if len(errors) > shown else ""
    return "\n".join(errors[:shown]) + more


def read_yaml_config(path: str | Path | None, default: Path) -> dict:
    """The mapping in a YAML config: ``path``, else ``default``; ``{}`` when the default file is absent.

    A missing explicit file, bad YAML or a top level that is not ``key: value`` is a ``ConfigError``
    that names the fix.
    """
    import yaml

    path = Path(path) if path else default
    if not path.exists():
        if path == default:
            return {}
        raise ConfigError(f"설정 파일 '{path}'이(가) 없어요.", "경로를 확인하거나 --config 없이 실행하세요.")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"설정 파일 '{path}'을(를) 읽을 수 없어요: {exc}", "YAML 문법을 고치세요.") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"설정 파일 '{path}'의 맨 위가 '키: 값' 형태가 아니에요.", "configs/ 의 예시처럼 고치세요.")
    return data
