"""Hybrid retrieval: one analysed ``Query`` → metadata pre-filter → each ``Retriever`` → reciprocal-rank fusion.

    retriever = HybridRetriever(artifacts, linker, config)
    hits = retriever.search("배가 꼬이듯 아파요", k=5)                        # fused
    hits = retriever.search("두통", k=5, modes=("bm25",))                     # one retriever alone
    hits = retriever.search("약", k=5, filters={"entity_type": "drug"})        # pre-filtered
    query = retriever.analyse("와파린 먹는데 아스피린 같이 먹어도 돼요?")       # Kiwi once …
    hits = retriever.search(query, k=5, filters={"entity": ["drug.warfarin"]})  # … however many searches

The retrievers themselves (``BM25Retriever``, ``DenseRetriever``, ``KGFactRetriever``) share one
contract (``kmed.retrieval.query.Retriever``); this module only analyses the query, builds the
filter mask, asks each retriever and fuses their rankings.

Filters keep only passages whose metadata match every given key: ``department`` (an id in
``departments``), ``entity`` (an id in ``entity_ids``), ``source`` (an id in ``source_ids``),
``section`` and ``entity_type``. Each value may be a string or a list of accepted strings.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from kmed.kg.graph import GraphQueries
from kmed.kg.linker import EntityLinker, Mention
from kmed.retrieval.bm25 import BM25Retriever
from kmed.retrieval.config import RetrievalConfig
from kmed.retrieval.dense import DenseRetriever
from kmed.retrieval.index import IndexArtifacts
from kmed.retrieval.kg_facts import KGFactRetriever, source_names
from kmed.retrieval.passages import Hit, Passage
from kmed.retrieval.query import Query, QueryAnalyser, Retriever

MODES = ("bm25", "dense", "kg")

_FILTER_FIELDS = {"department": "departments", "entity": "entity_ids", "source": "source_ids"}


def _as_set(value) -> set[str]:
    return {value} if isinstance(value, str) else set(value)


def passage_matches(passage: Passage | Hit, filters: dict) -> bool:
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
        self.analyser = QueryAnalyser(artifacts.terms, linker)
        self.kg = KGFactRetriever(self.queries, source_names(artifacts.passages))
        # In fusion order; dense only when the index has it and the config enables it.
        self.retrievers: dict[str, Retriever] = {"bm25": BM25Retriever(artifacts.bm25, artifacts.passages)}
        if artifacts.faiss is not None and artifacts.embedder is not None and config.dense.enabled:
            self.retrievers["dense"] = DenseRetriever(artifacts.embedder, artifacts.faiss, artifacts.passages)
        self.retrievers["kg"] = self.kg

    def analyse(self, text: str, mentions: list[Mention] | None = None) -> Query:
        """The query every retriever reads: Kiwi runs over ``text`` once (the linker too, unless ``mentions``)."""
        return Query.analyse(text, self.analyser, mentions)

    def _mask(self, filters: dict | None) -> np.ndarray | None:
        if not filters:
            return None
        return np.array([passage_matches(p, filters) for p in self.a.passages], dtype=bool)

    def search(self, query: str | Query, k: int = 5, filters: dict | None = None, modes=MODES,
               mentions: list[Mention] | None = None) -> list[Hit]:
        """Fused hits for a text (analysed here) or an analysed ``Query`` (then ``mentions`` is not read)."""
        if not isinstance(query, Query):
            query = self.analyse(query, mentions)
        if not query:
            return []
        mask = self._mask(filters)
        depth = max(self.config.candidates, k)
        rankings: dict[str, list[Hit]] = {}
        for name, retriever in self.retrievers.items():
            if name not in modes:
                continue
            hits = retriever.search(query, depth, mask)
            # The mask already holds the index's passages to the filters; this holds the KG's own.
            rankings[name] = [h for h in hits if not filters or passage_matches(h, filters)]
        return self._fuse(rankings, k)

    def _fuse(self, rankings: dict[str, list[Hit]], k: int) -> list[Hit]:
        scores: dict[str, float] = defaultdict(float)
        found_by: dict[str, list[str]] = defaultdict(list)
        found: dict[str, Hit] = {}
        for name, ranked in rankings.items():
            weight = float(self.config.weights.get(name, 1.0))
            for rank, hit in enumerate(ranked):
                scores[hit.id] += weight / (self.config.rrf_k + rank + 1)
                found_by[hit.id].append(name)
                found[hit.id] = hit
        ordered = sorted(scores, key=lambda pid: (-scores[pid], pid))[:k]
        return [
            Hit(pid, found[pid].title, found[pid].text, round(scores[pid], 6),
                {**found[pid].metadata, "retrievers": found_by[pid]})
            for pid in ordered
        ]
