"""Load and validate the curated knowledge base (``data/kb/``).

    kmed kb validate          # every error with its file, entry and field
    kmed kb stats --json      # counts, source coverage

``load_kb`` never raises on bad content: it returns a ``KnowledgeBase`` plus a list of
``KBError`` so a caller can print all problems at once. ``load_kb_or_fail`` raises one
``KBValidationError`` carrying them, for code paths that need a clean KB.

Parsing the YAML is slow (about 0.3 s with libyaml, 5 s with pure-Python PyYAML, for the shipped
KB on 2 cores), so only a build parses it. A built index keeps a JSON snapshot (``to_snapshot``/``from_snapshot``) and the
hash of every file; ``kb_file_hashes`` tells whether that snapshot is current without parsing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ValidationError

from kmed.artifacts import file_sha256
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
    Topic,
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
    topics: dict[str, Topic] = field(default_factory=dict)
    symptoms: dict[str, Symptom] = field(default_factory=dict)
    conditions: dict[str, Condition] = field(default_factory=dict)
    drugs: dict[str, Drug] = field(default_factory=dict)
    red_flags: dict[str, RedFlagRule] = field(default_factory=dict)
    # entry id -> the KB file (relative to root) it came from, for provenance.
    origin: dict[str, str] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)  # relative path -> sha256 of its bytes

    def entities(self) -> Iterable[Condition | Symptom | Drug | Department | DiagnosticTest | Topic]:
        yield from self.conditions.values()
        yield from self.symptoms.values()
        yield from self.drugs.values()
        yield from self.departments.values()
        yield from self.tests.values()
        yield from self.topics.values()

    def get(self, entity_id: str):
        for table in (self.conditions, self.symptoms, self.drugs, self.departments, self.tests, self.topics,
                      self.red_flags):
            if entity_id in table:
                return table[entity_id]
        return None

    def name_of(self, entity_id: str) -> str:
        entry = self.get(entity_id)
        if entry is not None:
            return entry.name
        return POPULATIONS.get(entity_id) or SUBSTANCES.get(entity_id) or entity_id

    def content_hash(self) -> str:
        return combined_hash(self.files)

    def to_snapshot(self) -> dict:
        """Every entry as plain JSON data, with where it came from: what an index stores."""
        sections = {key: [entry.model_dump(mode="json", by_alias=True, exclude_unset=True)
                          for entry in getattr(self, key).values()] for key in SECTION_MODELS}
        return {"sections": sections, "origin": self.origin, "files": self.files}

    @classmethod
    def from_snapshot(cls, data: dict, root: Path) -> KnowledgeBase:
        """The KB a snapshot holds; raises ``ValueError`` (or ``KeyError``) when it does not fit the schema."""
        kb = cls(root=Path(root), origin=dict(data["origin"]), files=dict(data["files"]))
        for key, model in SECTION_MODELS.items():
            table: dict = getattr(kb, key)
            for raw in data["sections"].get(key, []):
                entry = model.model_validate(raw)  # pydantic's ValidationError is a ValueError
                table[entry.id] = entry
        return kb

    def stats(self) -> dict[str, int | float]:
        entries = [*self.entities(), *self.red_flags.values()]
        specific = sum(1 for e in entries if e.specific_sources())
        return {
            "conditions": len(self.conditions),
            "symptoms": len(self.symptoms),
            "drugs": len(self.drugs),
            "departments": len(self.departments),
            "tests": len(self.tests),
            "topics": len(self.topics),
            "surface_forms": sum(len(e.surface_forms()) for e in self.entities()),
            "red_flag_rules": len(self.red_flags),
            "entries": len(entries),
            # Entries citing at least one source at a named product label, page or section ({id, detail}).
            "entries_with_specific_source": specific,
            "specific_source_share": round(specific / len(entries), 4) if entries else 0.0,
            "sources": len(self.sources),
            "sources_with_url": sum(1 for s in self.sources.values() if s.url),
            "drug_interaction_pairs": len(drug_interaction_pairs(self)),
        }


def kb_file_paths(root: Path) -> list[Path]:
    """The KB's files, in the order ``load_kb`` reads them."""
    return sorted(root.rglob("*.yaml")) + sorted(root.rglob("*.yml"))


def kb_file_hashes(root: str | Path | None = None) -> dict[str, str] | None:
    """Relative path → sha256 of every KB file (no parsing); None when the folder does not exist."""
    root = Path(root) if root is not None else default_kb_dir()
    if not root.is_dir():
        return None
    return {path.relative_to(root).as_posix(): file_sha256(path) for path in kb_file_paths(root)}


def combined_hash(files: dict[str, str]) -> str:
    """One digest over every file's path and hash: what an index records as ``kb_hash``."""
    digest = hashlib.sha256()
    for rel in sorted(files):
        digest.update(rel.encode() + b"\0" + files[rel].encode() + b"\n")
    return digest.hexdigest()


def _field_path(loc: tuple) -> str:
    return ".".join(str(part) for part in loc)


def _read_yaml(path: Path, rel: str, errors: list[KBError]) -> dict | None:
    import yaml  # only a build or a validation reads the YAML; a session loads the index's snapshot

    # libyaml's parser where PyYAML was built with it: the same documents, about 10x faster.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        data = yaml.load(path.read_text(encoding="utf-8-sig"), Loader=loader)  # CSafeLoader or SafeLoader
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
    for path in kb_file_paths(root):
        rel = path.relative_to(root).as_posix()
        kb.files[rel] = file_sha256(path)
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
        if c.urgency:
            check(c, "urgency.sources", c.urgency.sources, (kb.sources,))
        check(c, "risk_factors", [r for r in c.risk_factors if r.startswith("cond.")], (kb.conditions,))
    for s in kb.symptoms.values():
        check(s, "departments", s.departments, (kb.departments,))
    for d in kb.drugs.values():
        check(d, "uses", d.uses, (kb.conditions, kb.symptoms))
        check(d, "contraindications", [c.population for c in d.contraindications], (kb.conditions,), POPULATIONS)
        check(d, "interactions", [i.with_ for i in d.interactions], (kb.drugs,), SUBSTANCES)
    for t in kb.topics.values():
        check(t, "related", t.related, (kb.conditions, kb.symptoms, kb.drugs, kb.tests, kb.topics))
        check(t, "departments", t.departments, (kb.departments,))
    errors.extend(_check_interaction_symmetry(kb))
    for r in kb.red_flags.values():
        ids = [i for p in r.patterns for i in (*p.all_of, *p.any_of)]
        check(r, "patterns", ids, (kb.symptoms, kb.conditions))
        check(r, "conditions", r.conditions, (kb.conditions,))
        check(r, "departments", r.departments, (kb.departments,))
    return errors


def drug_interaction_pairs(kb: KnowledgeBase) -> set[frozenset[str]]:
    """Unordered drug–drug pairs stated anywhere in the KB."""
    return {frozenset((d.id, ix.with_)) for d in kb.drugs.values() for ix in d.interactions
            if ix.with_ in kb.drugs and ix.with_ != d.id}


def _check_interaction_symmetry(kb: KnowledgeBase) -> list[KBError]:
    """A drug–drug interaction is listed on both drugs, with the same severity.

    Each side has its own note (written from that drug's side), so a reader of either entry meets it.
    """
    errors: list[KBError] = []
    for d in kb.drugs.values():
        seen: set[str] = set()
        for ix in d.interactions:
            if ix.with_ in seen:
                errors.append(KBError(kb.origin[d.id], d.id, "interactions", f"'{ix.with_}' is listed twice"))
            seen.add(ix.with_)
            other = kb.drugs.get(ix.with_)
            if other is None:
                continue
            back = next((b for b in other.interactions if b.with_ == d.id), None)
            if back is None:
                errors.append(KBError(kb.origin[d.id], d.id, "interactions",
                                      f"interaction with '{other.id}' is missing on {other.id} "
                                      f"({kb.origin[other.id]}); list it on both drugs with severity '{ix.severity}'"))
            elif back.severity != ix.severity and d.id < other.id:
                errors.append(KBError(kb.origin[d.id], d.id, "interactions",
                                      f"severity with '{other.id}' is '{ix.severity}' here but '{back.severity}' "
                                      f"on {other.id}; use one severity on both drugs"))
    return errors


def load_kb_or_fail(root: str | Path | None = None) -> KnowledgeBase:
    kb, errors = load_kb(root)
    if errors:
        raise KBValidationError(errors)
    return kb
