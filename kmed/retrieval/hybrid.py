"""Hybrid retrieval: metadata pre-filter → BM25, dense and KG candidates → reciprocal-rank fusion.

    retriever = HybridRetriever(artifacts, linker, config)
    hits = retriever.search("배가 꼬이듯 아파요", k=5)                        # fused
    hits = retriever.search("두통", k=5, modes=("bm25",))                     # one retriever alone
    hits = retriever.search("약", k=5, filters={"entity_type": "drug"})        # pre-filtered

Filters keep only passages whose metadata match every given key: ``department`` (an id in
``departments``), ``entity`` (an id in ``entity_ids``), ``source`` (an id in ``source_ids``),
``section`` and ``entity_type``. Each value may be a string or a list of accepted strings.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from kmed.kg.graph import GraphQueries
from kmed.kg.linker import EntityLinker, Mention
from kmed.retrieval.bm25 import analyze
from kmed.retrieval.config import RetrievalConfig
from kmed.retrieval.index import IndexArtifacts
from kmed.retrieval.kg_facts import KGFactRetriever
from kmed.retrieval.passages import Hit, Passage

MODES = ("bm25", "dense", "kg")
MAX_QUERY_CHARS = 1000

_FILTER_FIELDS = {"department": "departments", "entity": "entity_ids", "source": "source_ids"}


def _as_set(value) -> set[str]:
    return {value} if isinstance(value, str) else set(value)


def passage_matches(passage: Passage, filters: dict) -> bool:
    meta = passage.metadata
    for key, wanted in filters.items():
        accepted = _as_set(wanted)
        if key in _FILTER_FIELDS:
            if not accepted & set(meta.get(_FILTER_FIELDS[key]) or []):
                return False
        elif key in ("section", "entity_type"):
            if meta.get(key) not in accepted:
                return False
        else:
            from kmed.errors import ConfigError

            raise ConfigError(f"알 수 없는 검색 필터 '{key}'", "department, entity, source, section, entity_type 중에서 쓰세요.")
    return True


class HybridRetriever:
    def __init__(self, artifacts: IndexArtifacts, linker: EntityLinker, config: RetrievalConfig):
        self.a = artifacts
        self.linker = linker
        self.config = config
        self.queries = GraphQueries(artifacts.graph)
        self.kg = KGFactRetriever(self.queries, self._source_names())
        self._by_id = {p.id: i for i, p in enumerate(artifacts.passages)}

    def _source_names(self) -> dict[str, str]:
        names = {}
        for p in self.a.passages:
            for sid, name in zip(p.metadata.get("source_ids") or [], (p.metadata.get("source") or "").split(", "), strict=False):
                names.setdefault(sid, name)
        return names

    def expand_query(self, query: str, mentions: list[Mention]) -> str:
        """Append canonical names of linked lay forms ("속이 쓰려요" → "속쓰림")."""
        names = [m.name for m in mentions if not m.negated and m.name not in query]
        return " ".join([query, *dict.fromkeys(names)])

    def _mask(self, filters: dict | None) -> np.ndarray | None:
        if not filters:
            return None
        return np.array([passage_matches(p, filters) for p in self.a.passages], dtype=bool)

    def search(self, query: str, k: int = 5, filters: dict | None = None, modes=MODES,
               mentions: list[Mention] | None = None) -> list[Hit]:
        query = (query or "").strip()[:MAX_QUERY_CHARS]
        if not query:
            return []
        mentions = self.linker.link(query) if mentions is None else mentions
        expanded = self.expand_query(query, mentions)
        mask = self._mask(filters)
        depth = max(self.config.candidates, k)
        rankings: dict[str, list[Passage]] = {}
        if "bm25" in modes:
            scores = self.a.bm25.scores(analyze(self.a.terms, expanded), mask)
            top = np.argsort(-scores)[:depth]
            rankings["bm25"] = [self.a.passages[i] for i in top if scores[i] > 0]
        if "dense" in modes and self.a.faiss is not None and self.config.dense.enabled:
            allowed = np.flatnonzero(mask) if mask is not None else None
            if allowed is None or len(allowed):
                vector = self.a.embedder.encode([expanded])
                _, ids = self.a.faiss.search(vector, depth, allowed)
                rankings["dense"] = [self.a.passages[i] for i in ids[0] if i >= 0]
        if "kg" in modes:
            facts = self.kg.retrieve(mentions, k=depth)
            rankings["kg"] = [p for p in facts if not filters or passage_matches(p, filters)]
        return self._fuse(rankings, k)

    def _fuse(self, rankings: dict[str, list[Passage]], k: int) -> list[Hit]:
        scores: dict[str, float] = defaultdict(float)
        found_by: dict[str, list[str]] = defaultdict(list)
        passages: dict[str, Passage] = {}
        for name, ranked in rankings.items():
            weight = float(self.config.weights.get(name, 1.0))
            for rank, passage in enumerate(ranked):
                scores[passage.id] += weight / (self.config.rrf_k + rank + 1)
                found_by[passage.id].append(name)
                passages[passage.id] = passage
        ordered = sorted(scores, key=lambda pid: (-scores[pid], pid))[:k]
        return [
            Hit(pid, passages[pid].title, passages[pid].text, round(scores[pid], 6),
                {**passages[pid].metadata, "retrievers": found_by[pid]})
            for pid in ordered
        ]
