"""The ``learning_data_info`` schema shared by 국어 지문형 (71857) and 수학 풀이과정 (71859).

    blocks = read_blocks(obj)        # {"문항": Block(text=[…], image=[…]), "정답": …}
    blocks.get("해설").best()         # text entries joined, else the (이미지) ones

Class names come as ``문항`` (국어) or ``문항(텍스트)``/``문항(이미지)`` (수학); spacing varies. Some
math records keep a block's text only in its (이미지) class, so ``best()`` falls back to it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from kmed.data.aihub.loading import FileContext, FormatError
from kmed.data.aihub.records import Provenance, make_uid
from kmed.data.aihub.text import clean_text

_VARIANT = re.compile(r"\(\s*(텍스트|이미지)\s*\)")


@dataclass
class Block:
    text: list[str] = field(default_factory=list)
    image: list[str] = field(default_factory=list)

    def best(self) -> str:
        return "\n".join(self.text) or "\n".join(self.image)


def class_key(name: str) -> tuple[str, str]:
    """``"정답 (이미지)"`` → ("정답", "image"); ``"지문"`` → ("지문", "text")."""
    match = _VARIANT.search(name)
    variant = "image" if match and match.group(1) == "이미지" else "text"
    return re.sub(r"\s+", "", _VARIANT.sub("", name)), variant


def read_blocks(obj: dict) -> dict[str, Block]:
    info = obj.get("learning_data_info")
    if isinstance(info, dict):
        info = [info] if "class_info_list" in info else list(info.values())
    if not isinstance(info, list):
        raise FormatError("missing_field", "learning_data_info")
    blocks: dict[str, Block] = {}
    for item in info:
        if not isinstance(item, dict):
            continue
        name, variant = class_key(str(item.get("class_name") or ""))
        entries = item.get("class_info_list") or []
        if isinstance(entries, dict):
            entries = [entries]
        texts = [clean_text(e.get("text_description")) for e in entries if isinstance(e, dict)]
        block = blocks.setdefault(name, Block())
        getattr(block, variant).extend(t for t in texts if t)
    return blocks


def block_text(blocks: dict[str, Block], name: str) -> str:
    block = blocks.get(name)
    return block.best() if block else ""


def school_info(obj: dict) -> dict[str, str]:
    raw = obj.get("raw_data_info") if isinstance(obj.get("raw_data_info"), dict) else {}
    source = obj.get("source_data_info") if isinstance(obj.get("source_data_info"), dict) else {}
    standards = []
    for key in ("2022_achievement_standard", "2015_achievement_standard", "2009_achievement_standard"):
        value = source.get(key)
        values = value if isinstance(value, list) else [value]
        standards.extend(clean_text(str(v)) for v in values if v and str(v).strip())
    return {
        "school": clean_text(str(raw.get("school") or "")),
        "grade": clean_text(str(raw.get("grade") or "")),
        "semester": clean_text(str(raw.get("semester") or "")),
        "subject": clean_text(str(raw.get("subject") or "")),
        "name": clean_text(str(source.get("source_data_name") or "")),
        "difficulty": clean_text(str(source.get("level_of_difficulty") or "")),
        "problem_type": clean_text(str(source.get("types_of_problems") or "")),
        "standard": standards[0] if standards else "",
    }


def native_id(info: dict[str, str], ctx: FileContext) -> str:
    return info["name"] or ctx.stem


def grade_label(info: dict[str, str]) -> str:
    return " ".join(x for x in (info["school"], info["grade"]) if x)


def record_fields(dataset: str, kind: str, info: dict[str, str], ctx: FileContext) -> dict:
    """The fields every school record shares: uid, provenance, domain (school and grade) and meta."""
    native = native_id(info, ctx)
    return {
        "uid": make_uid(dataset, kind, native),
        "prov": Provenance(dataset, ctx.aihub_split, ctx.path, native),
        "domain": grade_label(info),
        "meta": {k: v for k, v in info.items() if v},
    }


def looks_like_school(obj: dict) -> bool:
    return "learning_data_info" in obj and ("source_data_info" in obj or "raw_data_info" in obj)


def subject_claim(obj: dict, subject: str, prefix: str) -> tuple[bool, dict[str, str] | None]:
    """Whether a school file names ``subject`` (or an id starting with ``prefix``), and its info; the
    info is None when ``obj`` is not a school file at all."""
    if not looks_like_school(obj):
        return False, None
    info = school_info(obj)
    return info["subject"] == subject or info["name"].startswith(prefix), info


def read_required(obj: dict, names: tuple[str, ...]) -> tuple[dict[str, str], dict, list[str]]:
    """The file's info, its blocks and the text of each named block, in order; an empty one is a
    ``FormatError("missing_field", name)``."""
    info, blocks = school_info(obj), read_blocks(obj)
    texts = [block_text(blocks, name) for name in names]
    for name, text in zip(names, texts, strict=True):
        if not text:
            raise FormatError("missing_field", name)
    return info, blocks, texts
