"""Read every JSON file of a download, recognise its dataset, and turn it into unified records.

    records = load_records(Path("data/raw/aihub"), PipelineConfig(), report)

Each file goes to the first loader whose ``sniff`` accepts it. Loaders register themselves with
``@register_loader(rank)`` (lower ranks are asked first); the package ``__init__`` imports every loader
module once, so this module never imports a loader. The dataset is recognised from the
path (folder names such as ``09.필수의료 의학지식 데이터``, including the root the user gave) and, when
the path says nothing, from the content (keys, file-name prefixes, domain codes). A file that cannot
be decoded, parsed or recognised is skipped with a reason; nothing in a file can stop the run.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import TypeVar

from kmed.data.aihub.config import PipelineConfig
from kmed.data.aihub.records import Record
from kmed.data.aihub.report import Report
from kmed.data.aihub.tree import DownloadTree, SourceFile, nfc, norm_name


class FormatError(Exception):
    """A file or record that does not have the shape we expect: skipped under ``reason``."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


# Path words that name a dataset (matched on norm_name-ed paths: spaces and underscores alike).
_PATH_HINTS: list[tuple[str, tuple[str, ...]]] = [
    ("essential", ("필수의료", "필수 의료")),
    ("specialist", ("전문 의학지식", "전문의학지식", "전문 의학 지식")),
    ("healthcare_qa", ("헬스케어",)),
    ("korean_passage", ("국어 교과", "국어교과", "지문형")),
    ("math_solution", ("수학 교과", "수학교과", "풀이과정", "풀이 과정")),
]
_SPLIT_PREFIX = re.compile(r"^\d+\s*\.\s*")


def _split_of(part: str) -> str:
    name = _SPLIT_PREFIX.sub("", part)
    if name in ("training", "train", "학습", "학습데이터") or name[:3] in ("tl ", "ts "):
        return "Training"
    if name in ("validation", "valid", "검증", "검증데이터") or name[:3] in ("vl ", "vs "):
        return "Validation"
    return ""


@dataclass
class FileContext:
    path: str  # logical path inside the download
    root_hint: str  # norm_name of the absolute root, for hints above the given root
    interview_hints: tuple[str, ...] = ()

    @cached_property
    def parts(self) -> list[str]:
        return [nfc(p) for p in self.path.split("/")]

    @cached_property
    def norm_parts(self) -> list[str]:
        return [norm_name(p) for p in self.parts]

    @property
    def name(self) -> str:
        return self.parts[-1]

    @property
    def stem(self) -> str:
        return re.sub(r"\.json$", "", self.name, flags=re.IGNORECASE)

    @cached_property
    def aihub_split(self) -> str:
        for part in reversed(self.norm_parts[:-1]):
            split = _split_of(part)
            if split:
                return split
        for part in reversed(self.root_hint.split("/")):
            split = _split_of(part)
            if split:
                return split
        return ""

    def container(self, prefixes: tuple[str, ...] = ("tl", "vl", "ts", "vs")) -> str:
        """The label folder/zip name without its prefix: ``TL_내과.zip`` → ``내과``."""
        for raw, part in zip(reversed(self.parts[:-1]), reversed(self.norm_parts[:-1]), strict=True):
            head, _, rest = part.partition(" ")
            if head in prefixes and rest:
                return re.sub(r"\.zip$", "", nfc(raw), flags=re.IGNORECASE)[len(head) + 1 :].strip()
        return ""

    @cached_property
    def dataset_hint(self) -> str:
        """The dataset the path names, preferring the part nearest the file."""
        for text in ("/".join(self.norm_parts[:-1]), self.root_hint):
            for dataset, words in _PATH_HINTS:
                if any(word in text for word in words):
                    return dataset
            if any(norm_name(h) in text for h in self.interview_hints):
                return "interview"
        return ""


class Loader:
    """One per dataset family. ``sniff`` names the dataset a JSON object belongs to (or ``None``)."""

    def sniff(self, obj: dict, ctx: FileContext) -> str | None:
        raise NotImplementedError

    def load(self, obj: dict, ctx: FileContext, dataset: str, report: Report) -> list[Record]:
        raise NotImplementedError

    def finish(self, report: Report) -> list[Record]:
        """Records that need every file first (e.g. pairing questions with answers)."""
        return []

    @classmethod
    def from_config(cls, config: PipelineConfig) -> Loader:
        """A fresh loader for one run; loaders with settings read them from ``config``."""
        return cls()


_LoaderClass = TypeVar("_LoaderClass", bound=type[Loader])
_REGISTRY: dict[str, tuple[int, type[Loader]]] = {}  # class name → (rank, class); a reload replaces


def register_loader(rank: int) -> Callable[[_LoaderClass], _LoaderClass]:
    """Class decorator: the loader joins ``default_loaders``, asked before loaders of higher rank."""

    def register(cls: _LoaderClass) -> _LoaderClass:
        _REGISTRY[cls.__qualname__] = (rank, cls)
        return cls

    return register


def default_loaders(config: PipelineConfig) -> list[Loader]:
    """One fresh instance of every registered loader, in rank order."""
    return [cls.from_config(config) for _, cls in sorted(_REGISTRY.values(), key=lambda entry: entry[0])]


def decode_json(data: bytes) -> object:
    """Bytes → JSON value: UTF-8 with or without BOM, UTF-16 with BOM, CP949; JSON Lines too."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        text = data.decode("utf-16")
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            try:
                text = data.decode("cp949")
            except UnicodeDecodeError as exc:
                raise FormatError("bad_encoding", str(exc)[:80]) from exc
    text = text.lstrip("\ufeff")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data":
            try:
                return [json.loads(line) for line in text.splitlines() if line.strip()]
            except json.JSONDecodeError:
                pass
        raise FormatError("bad_json", f"line {exc.lineno} col {exc.colno}: {exc.msg}") from exc


def _objects(value: object) -> list[dict]:
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
        return value
    raise FormatError("not_object", type(value).__name__)


def _unique_uids(records: Iterable[Record], report: Report) -> list[Record]:
    seen: set[str] = set()
    out = []
    for record in records:
        if record.uid in seen:
            suffix = hashlib.blake2b(record.prov.file.encode(), digest_size=4).hexdigest()
            report.skip("duplicate_id", record.prov.file, record.uid)
            record.uid = f"{record.uid}~{suffix}"
            while record.uid in seen:
                record.uid += "~"
        seen.add(record.uid)
        out.append(record)
    return out


def load_records(
    tree: DownloadTree,
    config: PipelineConfig,
    report: Report,
    on_file: Callable[[SourceFile], None] | None = None,
    loaders: list[Loader] | None = None,
) -> list[Record]:
    loaders = loaders if loaders is not None else default_loaders(config)
    root_hint = "/".join(norm_name(p) for p in tree.root.resolve().parts)
    hints = tuple(config.interview.path_hints)
    records: list[Record] = []
    for source in tree.files():
        if on_file:
            on_file(source)
        ctx = FileContext(source.path, root_hint, hints)
        try:
            data = source.read()
        except Exception as exc:  # noqa: BLE001 - a bad zip entry or unreadable file is skipped
            report.found["unknown"] += 1
            report.skip("bad_zip_entry" if ".zip/" in source.path else "read_error", source.path, type(exc).__name__)
            continue
        try:
            objects = _objects(decode_json(data))
        except FormatError as exc:
            report.found[ctx.dataset_hint or "unknown"] += 1
            report.skip(exc.reason, source.path, exc.detail)
            continue
        records.extend(_load_objects(objects, ctx, loaders, report))
    for loader in loaders:
        try:
            records.extend(loader.finish(report))
        except Exception as exc:  # noqa: BLE001 - one loader's bug must not lose the others' data
            report.note(f"{type(loader).__name__} 마무리 중 오류가 나서 일부 기록을 건너뛰었어요: {exc}")
    for record in records:
        report.loaded[f"{record.prov.dataset}/{record.kind}"] += 1
    return _unique_uids(records, report)


def _load_objects(objects: list[dict], ctx: FileContext, loaders: list[Loader], report: Report) -> list[Record]:
    out: list[Record] = []
    counted = False
    for obj in objects:
        match = next(((loader, ds) for loader in loaders if (ds := loader.sniff(obj, ctx))), None)
        if not counted:
            report.found[match[1] if match else ctx.dataset_hint or "unknown"] += 1
            counted = True
        if match is None:
            report.skip("unknown_format", ctx.path, ", ".join(sorted(obj)[:6]))
            continue
        loader, dataset = match
        try:
            out.extend(loader.load(obj, ctx, dataset, report))
        except FormatError as exc:
            report.skip(exc.reason, ctx.path, exc.detail)
        except Exception as exc:  # noqa: BLE001 - a record of unexpected shape is skipped, never fatal
            report.skip("bad_field", ctx.path, f"{type(exc).__name__}: {exc}"[:120])
    return out


# -- small helpers the loaders share ------------------------------------------------------------
def text_field(obj: dict, key: str, required: bool = True) -> str:
    from kmed.data.aihub.text import clean_text

    value = obj.get(key)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if value is not None and not isinstance(value, str):
        raise FormatError("bad_field", f"{key}: {type(value).__name__}")
    text = clean_text(value)
    if required and not text:
        raise FormatError("missing_field", key)
    return text


def int_field(obj: dict, key: str) -> int | None:
    value = obj.get(key)
    if isinstance(value, bool) or value in (None, "", "null"):
        return None
    try:
        return int(str(value).strip())
    except ValueError:
        return None


def id_field(obj: dict, key: str) -> str:
    value = obj.get(key)
    if value is None or isinstance(value, (dict, list)) or str(value).strip() in ("", "null"):
        raise FormatError("missing_field", key)
    return nfc(str(value).strip())
