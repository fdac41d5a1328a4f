"""KG retrieval: entities linked in a query pull graph facts, rendered as short Korean passages.

For symptoms, the graph ranks candidate conditions (rarer shared symptoms weigh more); each
candidate becomes one passage about that condition. For a condition or drug, its departments,
red-flag symptoms, interactions and contraindications become passages. Every passage carries the
provenance of the edges it was rendered from. ``KGFactRetriever`` is a ``Retriever``: it reads the
query's mentions, so it runs no Kiwi of its own.

Each passage is built from its sentences and stores their ends, as index passages do, so quoting it
never runs the sentence splitter (and never builds the splitter's Kiwi, about 1 s, in a first turn).
A KB note is kept as one quotable unit: the few two-sentence notes are one statement whose second
sentence qualifies the first ("…먹지 않아요. 산부인과에서 처방한 저용량 아스피린은 이와 달리 …").
"""

from __future__ import annotations

import numpy as np

from kmed.kg.graph import GraphQueries
from kmed.kg.linker import Mention
from kmed.retrieval.passages import Hit, Passage
from kmed.retrieval.query import Query
from kmed.text_ko import join_sentences, josa, normalize_space, sentence_ends

# Interactions are cut to a few per drug; the most severe ones must survive the cut.
SEVERITY_RANK = {"major": 0, "moderate": 1, "minor": 2}
MAX_DRUG_FACTS = 6


def by_severity(interactions: list[tuple[str, dict]]) -> list[tuple[str, dict]]:
    """Major first, then moderate, then minor (unknown last); stable within a severity."""
    return sorted(interactions, key=lambda item: SEVERITY_RANK.get(item[1].get("severity", ""), len(SEVERITY_RANK)))


def _provenance(edges: list[dict]) -> tuple[str, list[str]]:
    sources = sorted({s for e in edges for s in e.get("provenance", {}).get("sources", [])})
    files = sorted({e.get("provenance", {}).get("file", "") for e in edges} - {""})
    return ", ".join(files), sources


def source_names(passages: list[Passage]) -> dict[str, str]:
    """Source id → the name the KB passages give it, so KG facts cite sources the same way."""
    names: dict[str, str] = {}
    for p in passages:
        for sid, name in zip(p.metadata.get("source_ids") or [], (p.metadata.get("source") or "").split(", "), strict=False):
            names.setdefault(sid, name)
    return names


class KGFactRetriever:
    name = "kg"

    def __init__(self, queries: GraphQueries, source_names: dict[str, str] | None = None):
        self.q = queries
        self.source_names = source_names or {}

    def search(self, query: Query, k: int, within: np.ndarray | None = None) -> list[Hit]:
        """Facts about the query's mentions, scored 1/rank. ``within`` does not apply: these passages
        are rendered here, not taken from the index."""
        return [Hit.of(p, 1.0 / rank) for rank, p in enumerate(self.retrieve(list(query.mentions), k=k), start=1)]

    def _passage(self, pid: str, about: str, title: str, sentences: list[str], edges: list[dict],
                 section: str) -> Passage:
        origin, sources = _provenance(edges)
        node = self.q.graph.nodes.get(about, {})
        sentences = [normalize_space(s) for s in sentences if s and s.strip()]
        return Passage(
            id=f"kg:{pid}",
            title=title,
            text=join_sentences(sentences),
            metadata={
                "entity_ids": [about],
                "entity_names": [node.get("name", about)],
                "entity_type": "kg_fact",
                "section": section,
                "section_title": "지식그래프",
                "departments": self.q.departments_of(about),
                "source": ", ".join(self.source_names.get(s, s) for s in sources) or "kmed 지식그래프",
                "source_ids": sources,
                "origin": origin,
                "lang": "ko",
                "sentence_ends": sentence_ends(sentences),
            },
        )

    def retrieve(self, mentions: list[Mention], k: int = 10) -> list[Passage]:
        positive = [m for m in mentions if not m.negated]
        symptoms = list(dict.fromkeys(m.id for m in positive if m.type == "symptom"))
        passages: list[Passage] = []
        if symptoms:
            for cand in self.q.candidate_conditions(symptoms, limit=k):
                names = ", ".join(self.q.name(s) for s in cand.matched)
                edges = [d for s in cand.matched for _, dst, d in self.q.graph.out_edges(cand.id, data=True) if dst == s]
                depts = ", ".join(self.q.name(d) for d in self.q.departments_of(cand.id)[:2])
                sentences = [f"{names} 증상이 있을 때 생각해 볼 수 있는 질환으로 {josa(cand.name, '이')} 있어요."]
                if depts:
                    sentences.append(f"{josa(cand.name, '은')} {depts}에서 진료해요.")
                passages.append(self._passage(f"{cand.id}:candidate", cand.id, f"{cand.name} · 증상으로 본 가능성",
                                              sentences, edges, "kg_candidate"))
        for m in positive:
            if m.type == "disease":
                passages.extend(self._condition_facts(m.id))
            elif m.type == "drug":
                passages.extend(self._drug_facts(m.id))
        seen, unique = set(), []
        for p in passages:
            if p.id not in seen:
                seen.add(p.id)
                unique.append(p)
        return unique[:k]

    def _edges(self, src: str, edge_type: str) -> list[tuple[str, dict]]:
        return [(dst, d) for _, dst, d in self.q.graph.out_edges(src, data=True) if d["type"] == edge_type]

    def _condition_facts(self, cid: str) -> list[Passage]:
        name = self.q.name(cid)
        out = []
        dept_edges = self._edges(cid, "visit_department")
        if dept_edges:
            depts = ", ".join(self.q.name(d) for d, _ in dept_edges)
            out.append(self._passage(f"{cid}:departments", cid, f"{name} · 진료과", [f"{josa(name, '은')} {depts}에서 진료해요."],
                                     [d for _, d in dept_edges], "kg_departments"))
        flags = self._edges(cid, "red_flag")
        if flags:
            names = ", ".join(self.q.name(s) for s, _ in flags)
            out.append(self._passage(f"{cid}:red_flags", cid, f"{name} · 위험 신호",
                                     [f"{name}에서 {josa(names, '이')} 나타나면 빨리 진료가 필요한 위험 신호예요."],
                                     [d for _, d in flags], "kg_red_flags"))
        return out

    def _drug_facts(self, did: str) -> list[Passage]:
        name = self.q.name(did)
        out = []
        for other, data in by_severity(self.q.interactions_of(did))[:MAX_DRUG_FACTS]:
            note = data.get("note", "")
            out.append(self._passage(f"{did}:ix:{other}", did, f"{name} · 상호작용",
                                     [f"{josa(name, '은')} {josa(self.q.name(other), '과')} 함께 쓸 때 주의가 필요해요.", note],
                                     [data], "kg_interactions"))
        contraindications = sorted(self.q.contraindications_of(did), key=lambda item: item[1].get("level") != "contraindicated")
        for target, data in contraindications[:MAX_DRUG_FACTS]:
            level = "금기예요" if data.get("level") == "contraindicated" else "주의가 필요해요"
            out.append(self._passage(f"{did}:ci:{target}", did, f"{name} · 금기와 주의",
                                     [f"{self.q.name(target)}에게 {josa(name, '은')} {level}.", data.get("note", "")],
                                     [data], "kg_contraindications"))
        return out
