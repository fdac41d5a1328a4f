"""Turn the curated KB into sentence-aligned passages with metadata.

Each condition section and drug section becomes one or more passages of whole sentences (the one
sentence splitter, ``kmed.text_ko``), at most ``max_chars`` long. Symptoms, tests and departments get one short
passage each. Structured drug facts (dose, contraindications, interactions) are rendered as
Korean sentences so they can be retrieved and cited like prose.
"""

from __future__ import annotations

from collections.abc import Iterator

from kmed.data.kb import KnowledgeBase
from kmed.data.kb_schema import CONDITION_SECTIONS, DRUG_SECTIONS
from kmed.retrieval.passages import Passage
from kmed.text_ko import join_sentences, josa, pack_sentence_groups, sentence_ends, split_sentences

# 150/220/400 measured equal within noise (docs/benchmarks.md, "Passage size"); 220 keeps citations short.
DEFAULT_MAX_CHARS = 220

_LEVEL_KO = {"contraindicated": "금기", "caution": "주의"}
_SEVERITY_KO = {"major": "중대한", "moderate": "중간 정도의", "minor": "가벼운"}


def section_passages(id_prefix: str, title: str, text: str, metadata: dict, max_chars: int) -> Iterator[Passage]:
    """Passages ``{id_prefix}#0``, ``#1`` … of whole sentences, each with its ``sentence_ends``."""
    for n, group in enumerate(pack_sentence_groups(split_sentences(text), max_chars)):
        yield Passage(id=f"{id_prefix}#{n}", title=title, text=join_sentences(group),
                      metadata={**metadata, "sentence_ends": sentence_ends(group)})


def _source_names(kb: KnowledgeBase, entry) -> tuple[str, list[str]]:
    ids = entry.source_ids()
    names = [f"{kb.sources[i].publisher} {kb.sources[i].title}" if i in kb.sources else i for i in ids]
    return ", ".join(dict.fromkeys(names)), ids


def kb_passages(kb: KnowledgeBase, max_chars: int = DEFAULT_MAX_CHARS) -> Iterator[Passage]:
    for c in kb.conditions.values():
        source, source_ids = _source_names(kb, c)
        base = {
            "entity_ids": [c.id],
            "entity_names": [c.name],
            "entity_type": "condition",
            "departments": c.departments,
            "source": source,
            "source_ids": source_ids,
            "origin": kb.origin.get(c.id, ""),
            "lang": "ko",
        }
        for section, title_ko in CONDITION_SECTIONS.items():
            yield from section_passages(f"{c.id}#{section}", f"{c.name} · {title_ko}", c.sections[section],
                                        {**base, "section": section, "section_title": title_ko}, max_chars)
    for d in kb.drugs.values():
        yield from _drug_passages(kb, d, max_chars)
    for s in kb.symptoms.values():
        source, source_ids = _source_names(kb, s)
        lay = ", ".join(f"'{t}'" for t in s.lay_terms[:6])
        # Without a written description, the passage lists how people say it: good for retrieval,
        # never quoted in answers (section "lay_terms" is skipped by the composer).
        section = "overview" if s.description else "lay_terms"
        sentences = split_sentences(s.description or f"{josa(s.name, '은')} 흔히 {lay}처럼 표현하는 증상이에요.")
        yield Passage(
            id=f"{s.id}#{section}#0",
            title=f"{s.name} · 증상 설명",
            text=join_sentences(sentences),
            metadata={"entity_ids": [s.id], "entity_names": [s.name], "entity_type": "symptom",
                      "departments": s.departments, "section": section, "section_title": "증상 설명",
                      "source": source, "source_ids": source_ids, "origin": kb.origin.get(s.id, ""), "lang": "ko",
                      "sentence_ends": sentence_ends(sentences)},
        )
    for entry, kind in [*((t, "test") for t in kb.tests.values()), *((d, "department") for d in kb.departments.values())]:
        source, source_ids = _source_names(kb, entry)
        sentences = split_sentences(entry.description)
        yield Passage(
            id=f"{entry.id}#overview#0",
            title=f"{entry.name} · {'검사' if kind == 'test' else '진료과'}",
            text=join_sentences(sentences),
            metadata={"entity_ids": [entry.id], "entity_names": [entry.name], "entity_type": kind,
                      "departments": [entry.id] if kind == "department" else [], "section": "overview",
                      "section_title": "설명", "source": source, "source_ids": source_ids,
                      "origin": kb.origin.get(entry.id, ""), "lang": "ko", "sentence_ends": sentence_ends(sentences)},
        )

    yield from _topic_passages(kb, max_chars)


def _topic_passages(kb: KnowledgeBase, max_chars: int = DEFAULT_MAX_CHARS) -> Iterator[Passage]:
    """Topics (reference values, schedules, durations, hotlines, corrected myths) as passages.

    A topic's sentences are written one claim each, so they are packed as given, never re-split.
    Section ``overview`` keeps them quotable; ``topic_kind`` says which kind of topic it is.
    """
    from kmed.data.kb_schema import TOPIC_KINDS

    for t in getattr(kb, "topics", {}).values():
        source, source_ids = _source_names(kb, t)
        title = f"{t.name} · {TOPIC_KINDS[t.kind]}"
        # A topic with related entries is part of what the first one is about (HbA1c thresholds belong to
        # diabetes), so that entry leads ``entity_ids``; the topic id follows for filters and provenance.
        lead = t.related[:1]
        base = {"entity_ids": [*lead, t.id], "entity_names": [*(kb.name_of(i) for i in lead), t.name],
                "entity_type": "topic", "related_ids": t.related,
                "departments": t.departments, "section": "overview", "section_title": TOPIC_KINDS[t.kind],
                "topic_kind": t.kind, "source": source, "source_ids": source_ids,
                "origin": kb.origin.get(t.id, ""), "lang": "ko"}
        groups: list[list[str]] = []
        for sentence in (s.strip() for s in t.sentences):
            if groups and len(" ".join(groups[-1])) + 1 + len(sentence) <= max_chars:
                groups[-1].append(sentence)
            else:
                groups.append([sentence])
        for n, group in enumerate(groups):
            ends, position = [], 0
            for sentence in group:
                position += len(sentence)
                ends.append(position)
                position += 1
            yield Passage(id=f"{t.id}#overview#{n}", title=title, text=" ".join(group),
                          metadata={**base, "sentence_ends": ends})


def _drug_passages(kb: KnowledgeBase, d, max_chars: int) -> Iterator[Passage]:
    source, source_ids = _source_names(kb, d)
    base = {"entity_ids": [d.id], "entity_names": [d.name], "entity_type": "drug", "departments": [],
            "source": source, "source_ids": source_ids, "origin": kb.origin.get(d.id, ""), "lang": "ko"}
    brands = f" (제품 예: {', '.join(d.brands)})" if d.brands else ""
    texts: dict[str, str] = {k: v for k, v in d.sections.items() if v}
    texts["overview"] = f"{josa(d.name + brands, '은')} {d.drug_class} 계열이에요. " + texts["overview"]
    if d.dose:
        dose = d.dose.adult + (f" {d.dose.max_daily}" if d.dose.max_daily else "")
        dose += f" {d.dose.children}" if d.dose.children else ""
        texts["dosage"] = (texts.get("dosage", "") + " " + dose).strip()
    cautions = [f"{kb.name_of(ci.population)}: {_LEVEL_KO[ci.level]}. {ci.note}" for ci in d.contraindications]
    if cautions:
        texts["cautions"] = (texts.get("cautions", "") + " " + " ".join(cautions)).strip()
    interactions = [f"{josa(kb.name_of(ix.with_), '과')} {_SEVERITY_KO[ix.severity]} 상호작용이 있어요. {ix.note}"
                    for ix in d.interactions]
    if interactions:
        texts["interactions"] = " ".join(interactions)
    if d.side_effects and "side_effects" not in texts:
        texts["side_effects"] = f"흔한 부작용으로 {', '.join(d.side_effects)} 등이 있어요."
    titles = {**DRUG_SECTIONS, "interactions": "상호작용"}
    for section, text in texts.items():
        yield from section_passages(f"{d.id}#{section}", f"{d.name} · {titles[section]}", text,
                                    {**base, "section": section, "section_title": titles[section]}, max_chars)
