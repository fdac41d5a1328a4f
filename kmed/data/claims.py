"""Checkable claims of the KB, and a seeded sample of them for a second medical read.

    kmed kb sample-claims --n 120 --seed 11 --out claims.jsonl

A *claim* is one sentence a patient could read word for word that a reviewer can check against a
source: a dose or maximum, a contraindication, an interaction, a number or threshold, a screening
or vaccination age or interval, a red-flag reason or action, a hotline. The sample is stratified by
entry type (each type gets a share, the rest is drawn from the pool), so drugs, conditions, topics
and red-flag rules are all read. The same KB, ``n`` and ``seed`` always give the same sample.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from kmed.data.kb import KnowledgeBase
from kmed.data.kb_schema import CONDITION_SECTIONS, DRUG_SECTIONS, POPULATIONS, SUBSTANCES
from kmed.text_ko import split_sentences

# Sentence boundaries for claim extraction only (the product's splitter lives elsewhere): after a
# final 요./다./!/? followed by a space.
_NUMBER = re.compile(r"\d")
_CHECKABLE = re.compile(
    r"\d|금기|쓰지 않|먹지 않|피해|주의|함께 쓰|함께 먹|기준|이상이면|이하|미만|초과|넘기지|넘으면|최대|"
    r"119|109|1577|1393|1588|129|응급실|바로 진료|검진|접종|개월|세 이상|세부터|주기|기간"
)
_LEVEL_KO = {"contraindicated": "금기", "caution": "주의"}
_SEVERITY_KO = {"major": "중대한", "moderate": "중간 정도의", "minor": "가벼운"}


@dataclass
class Claim:
    claim_id: str  # entry id + field + index: stable across runs while the entry is unchanged
    entry_id: str
    entry_type: str  # condition | drug | symptom | test | topic | red_flag
    file: str
    field: str
    kind: str  # dose | contraindication | interaction | number | red_flag | hotline | statement
    text: str
    sources: list[dict] = field(default_factory=list)


def _sentences(text: str) -> list[str]:
    return [s for s in split_sentences(text or "") if len(s) > 3]


def _kind_of(text: str, default: str = "statement") -> str:
    if re.search(r"\b(119|109|129|1577-?0199|1393|1588)\b|상담전화|위기상담", text):
        return "hotline"
    if _NUMBER.search(text):
        return "number"
    return default


def _sources(kb: KnowledgeBase, entry) -> list[dict]:
    out = []
    for ref in entry.sources:
        sid, detail = (ref, None) if isinstance(ref, str) else (ref.id, ref.detail)
        src = kb.sources.get(sid)
        out.append({"id": sid, "detail": detail, "title": src.title if src else sid,
                    "publisher": src.publisher if src else "", "url": src.url if src else None,
                    "year": src.year if src else None, "edition": src.edition if src else None})
    return out


def _name(kb: KnowledgeBase, ref: str) -> str:
    entry = kb.get(ref)
    return entry.name if entry is not None else POPULATIONS.get(ref) or SUBSTANCES.get(ref) or ref


def extract_claims(kb: KnowledgeBase) -> list[Claim]:
    """Every checkable sentence in the KB, in a stable order."""
    claims: list[Claim] = []

    def add(entry, entry_type: str, field_name: str, text: str, kind: str | None = None, only_checkable=True):
        for n, sentence in enumerate(_sentences(text)):
            if only_checkable and not _CHECKABLE.search(sentence):
                continue
            claims.append(Claim(f"{entry.id}:{field_name}:{n}", entry.id, entry_type, kb.origin.get(entry.id, ""),
                                field_name, kind or _kind_of(sentence), sentence, _sources(kb, entry)))

    for c in kb.conditions.values():
        for section in CONDITION_SECTIONS:
            add(c, "condition", f"sections.{section}", c.sections.get(section, ""))
    for d in kb.drugs.values():
        if d.dose:
            add(d, "drug", "dose.adult", d.dose.adult, "dose", only_checkable=False)
            if d.dose.max_daily:
                add(d, "drug", "dose.max_daily", d.dose.max_daily, "dose", only_checkable=False)
            if d.dose.children:
                add(d, "drug", "dose.children", d.dose.children, "dose", only_checkable=False)
        for i, ci in enumerate(d.contraindications):
            text = f"{_name(kb, ci.population)}: {_LEVEL_KO[ci.level]}. {ci.note}"
            claims.append(Claim(f"{d.id}:contraindications:{i}", d.id, "drug", kb.origin.get(d.id, ""),
                                "contraindications", "contraindication", text, _sources(kb, d)))
        for i, ix in enumerate(d.interactions):
            text = f"{d.name} + {_name(kb, ix.with_)}: {_SEVERITY_KO[ix.severity]} 상호작용. {ix.note}"
            claims.append(Claim(f"{d.id}:interactions:{i}", d.id, "drug", kb.origin.get(d.id, ""),
                                "interactions", "interaction", text, _sources(kb, d)))
        for section in DRUG_SECTIONS:
            add(d, "drug", f"sections.{section}", d.sections.get(section, ""))
    for s in kb.symptoms.values():
        if s.description:
            add(s, "symptom", "description", s.description)
    for t in kb.tests.values():
        add(t, "test", "description", t.description)
    for t in kb.topics.values():
        for n, sentence in enumerate(t.sentences):
            claims.append(Claim(f"{t.id}:sentences:{n}", t.id, "topic", kb.origin.get(t.id, ""), "sentences",
                                _kind_of(sentence, "myth" if t.kind == "myth" else "statement"), sentence,
                                _sources(kb, t)))
    for r in kb.red_flags.values():
        for field_name in ("reason", "action"):
            claims.append(Claim(f"{r.id}:{field_name}:0", r.id, "red_flag", kb.origin.get(r.id, ""), field_name,
                                "red_flag" if field_name == "reason" else _kind_of(getattr(r, field_name), "red_flag"),
                                getattr(r, field_name), _sources(kb, r)))
    return claims


def sample_claims(kb: KnowledgeBase, n: int = 120, seed: int = 11) -> list[Claim]:
    """A seeded, stratified sample: every entry type gets ``n // (2 × types)`` claims (or all it has),
    the rest are drawn uniformly from the remaining pool. Returned in draw order."""
    claims = extract_claims(kb)
    rng = random.Random(seed)
    by_type: dict[str, list[Claim]] = {}
    for claim in claims:
        by_type.setdefault(claim.entry_type, []).append(claim)
    per_type = max(1, n // (2 * max(1, len(by_type))))
    chosen: list[Claim] = []
    for entry_type in sorted(by_type):
        pool = by_type[entry_type]
        chosen.extend(rng.sample(pool, min(per_type, len(pool))))
    taken = {c.claim_id for c in chosen}
    rest = [c for c in claims if c.claim_id not in taken]
    chosen.extend(rng.sample(rest, min(max(0, n - len(chosen)), len(rest))))
    return chosen[:n]


def write_claims(claims: list[Claim], out: str | Path) -> Path:
    """JSONL (one claim a line, with empty ``verdict`` and ``note`` for the reviewer), or a Markdown
    checklist when ``out`` ends in ``.md``."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".md":
        lines = ["| # | claim | entry | kind | sources | verdict (ok / wrong / misleading) | note |",
                 "|---|---|---|---|---|---|---|"]
        for i, c in enumerate(claims, 1):
            src = "; ".join(f"{s['id']}" + (f" ({s['detail']})" if s["detail"] else "") for s in c.sources)
            text = c.text.replace("|", "\\|")
            lines.append(f"| {i} | {text} | `{c.entry_id}` {c.field} | {c.kind} | {src} |  |  |")
        out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    else:
        with open(out, "w", encoding="utf-8") as handle:
            for i, c in enumerate(claims, 1):
                handle.write(json.dumps({"n": i, **asdict(c), "verdict": "", "note": ""}, ensure_ascii=False) + "\n")
    return out
