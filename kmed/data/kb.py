"""Load and validate the curated knowledge base (``data/kb/``).

    kmed kb validate          # every error with its file, entry and field
    kmed kb stats --json      # counts

``load_kb`` never raises on bad content: it returns a ``KnowledgeBase`` plus a list of
``KBError`` so a caller can print all problems at once. ``load_kb_or_fail`` raises one
``KBValidationError`` carrying them, for code paths that need a clean KB.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from pydantic import BaseModel, ValidationError

from kmed.data.kb_schema import (
    POPULATIONS,
    SECTION_MODELS,
    SUBSTANCES,
    Condition,
    Department,
    DiagnosticTest,
    Drug,
    RedFlagRule,
    Source,
    Symptom,
)
from kmed.errors import KmedError
from kmed.paths import default_kb_dir


@dataclass(frozen=True)
class KBError:
    file: str
    entry: str
    field: str
    message: str

    def __str__(self) -> str:
        where = self.file + (f" › {self.entry}" if self.entry else "") + (f" › {self.field}" if self.field else "")
        return f"{where}: {self.message}"


class KBValidationError(KmedError):
    def __init__(self, errors: list[KBError]):
        self.errors = errors
        shown = "\n".join(f"  - {e}" for e in errors[:20])
        more = f"\n  … and {len(errors) - 20} more" if len(errors) > 20 else ""
        super().__init__(
            f"지식베이스에 오류가 {len(errors)}개 있어요:\n{shown}{more}",
            "위 파일을 고친 뒤 'kmed kb validate'로 다시 확인하세요.",
        )


@dataclass
class KnowledgeBase:
    root: Path
    sources: dict[str, Source] = field(default_factory=dict)
    departments: dict[str, Department] = field(default_factory=dict)
    tests: dict[str, DiagnosticTest] = field(default_factory=dict)
    symptoms: dict[str, Symptom] = field(default_factory=dict)
    conditions: dict[str, Condition] = field(default_factory=dict)
    drugs: dict[str, Drug] = field(default_factory=dict)
    red_flags: dict[str, RedFlagRule] = field(default_factory=dict)
    # entry id -> the KB file (relative to root) it came from, for provenance.
    origin: dict[str, str] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)  # relative path -> sha256 of its bytes

    def entities(self) -> Iterable[Condition | Symptom | Drug | Department | DiagnosticTest]:
        yield from self.conditions.values()
        yield from self.symptoms.values()
        yield from self.drugs.values()
        yield from self.departments.values()
        yield from self.tests.values()

    def get(self, entity_id: str):
        for table in (self.conditions, self.symptoms, self.drugs, self.departments, self.tests, self.red_flags):
            if entity_id in table:
                return table[entity_id]
        return None

    def name_of(self, entity_id: str) -> str:
        entry = self.get(entity_id)
        if entry is not None:
            return entry.name
        return POPULATIONS.get(entity_id) or SUBSTANCES.get(entity_id) or entity_id

    def content_hash(self) -> str:
        digest = hashlib.sha256()
        for rel in sorted(self.files):
            digest.update(rel.encode() + b"\0" + self.files[rel].encode() + b"\n")
        return digest.hexdigest()

    def stats(self) -> dict[str, int]:
        return {
            "conditions": len(self.conditions),
            "symptoms": len(self.symptoms),
            "drugs": len(self.drugs),
            "departments": len(self.departments),
            "tests": len(self.tests),
            "surface_forms": sum(len(e.surface_forms()) for e in self.entities()),
            "red_flag_rules": len(self.red_flags),
        }


def _field_path(loc: tuple) -> str:
    return ".".join(str(part) for part in loc)


def _read_yaml(path: Path, rel: str, errors: list[KBError]) -> dict | None:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8-sig"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        errors.append(KBError(rel, "", where, f"not valid YAML: {getattr(exc, 'problem', exc)}"))
        return None
    except UnicodeDecodeError:
        errors.append(KBError(rel, "", "", "not UTF-8 text; save the file as UTF-8"))
        return None
    if data is None:
        return {}
    if not isinstance(data, dict):
        errors.append(KBError(rel, "", "", f"top level must be a mapping with one of {list(SECTION_MODELS)}"))
        return None
    return data


def load_kb(root: str | Path | None = None) -> tuple[KnowledgeBase, list[KBError]]:
    """Read every ``*.yaml`` under ``root``; return what validated and every error found."""
    root = Path(root) if root is not None else default_kb_dir()
    kb = KnowledgeBase(root=root)
    errors: list[KBError] = []
    if not root.is_dir():
        errors.append(KBError(str(root), "", "", "knowledge-base folder not found; pass --kb DIR or set KMED_KB_DIR"))
        return kb, errors
    for path in sorted(root.rglob("*.yaml")) + sorted(root.rglob("*.yml")):
        rel = path.relative_to(root).as_posix()
        kb.files[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
        data = _read_yaml(path, rel, errors)
        if not data:
            continue
        for key, items in data.items():
            model = SECTION_MODELS.get(key)
            if model is None:
                errors.append(KBError(rel, "", key, f"unknown top-level key; use one of {list(SECTION_MODELS)}"))
                continue
            if not isinstance(items, list):
                errors.append(KBError(rel, "", key, "must be a list of entries"))
                continue
            for index, raw in enumerate(items):
                _add_entry(kb, model, key, raw, rel, index, errors)
    errors.extend(_check_references(kb))
    return kb, errors


def _add_entry(kb: KnowledgeBase, model: type[BaseModel], key: str, raw, rel: str, index: int, errors):
    label = raw.get("id", f"#{index + 1}") if isinstance(raw, dict) else f"#{index + 1}"
    try:
        entry = model.model_validate(raw)
    except ValidationError as exc:
        for err in exc.errors():
            errors.append(KBError(rel, str(label), _field_path(err["loc"]), err["msg"]))
        return
    table: dict = getattr(kb, key)
    if entry.id in kb.origin:
        errors.append(KBError(rel, entry.id, "id", f"duplicate id; first defined in {kb.origin[entry.id]}"))
        return
    table[entry.id] = entry
    kb.origin[entry.id] = rel


def _check_references(kb: KnowledgeBase) -> list[KBError]:
    """Every id an entry points to must exist, with the right type."""
    errors: list[KBError] = []

    def check(entry, field_name: str, ids: Iterable[str], allowed: tuple[dict, ...], extra: dict | None = None):
        for ref in ids:
            if any(ref in table for table in allowed) or (extra and ref in extra):
                continue
            errors.append(KBError(kb.origin[entry.id], entry.id, field_name, f"unknown reference '{ref}'"))

    all_entries = [*kb.entities(), *kb.red_flags.values()]
    for entry in all_entries:
        check(entry, "sources", entry.source_ids(), (kb.sources,))
    for c in kb.conditions.values():
        check(c, "departments", c.departments, (kb.departments,))
        check(c, "symptoms", [*c.symptoms.typical, *c.symptoms.red_flag], (kb.symptoms,))
        check(c, "tests", c.tests, (kb.tests,))
        check(c, "drugs", c.drugs, (kb.drugs,))
        check(c, "complications", c.complications, (kb.conditions,))
        check(c, "is_a", c.is_a, (kb.conditions,))
        check(c, "risk_factors", [r for r in c.risk_factors if r.startswith("cond.")], (kb.conditions,))
    for s in kb.symptoms.values():
        check(s, "departments", s.departments, (kb.departments,))
    for d in kb.drugs.values():
        check(d, "uses", d.uses, (kb.conditions, kb.symptoms))
        check(d, "contraindications", [c.population for c in d.contraindications], (kb.conditions,), POPULATIONS)
        check(d, "interactions", [i.with_ for i in d.interactions], (kb.drugs,), SUBSTANCES)
    for r in kb.red_flags.values():
        ids = [i for p in r.patterns for i in (*p.all_of, *p.any_of)]
        check(r, "patterns", ids, (kb.symptoms, kb.conditions))
        check(r, "conditions", r.conditions, (kb.conditions,))
        check(r, "departments", r.departments, (kb.departments,))
    return errors


def load_kb_or_fail(root: str | Path | None = None) -> KnowledgeBase:
    kb, errors = load_kb(root)
    if errors:
        raise KBValidationError(errors)
    return kb
