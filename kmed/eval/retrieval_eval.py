"""Retrieval evaluation: Recall@1/5/10, MRR and nDCG@10 for BM25, dense, KG and hybrid, side by side.

    kmed eval retrieval --json [--data data/eval/retrieval_dev.jsonl]

Each dev line: ``{"id", "query", "gold": [entity ids], "kind"}``, with queries written in
patients' words. Relevance is judged per entity: a hit counts when the entity it is about
(``metadata.entity_ids[0]``) is a gold entity. Hits are collapsed to the ranked list of distinct
entities before scoring, so five passages of one condition do not count five times.

- Recall@k: the share of gold entities found in the top k distinct entities (averaged over queries);
- MRR: 1 / rank of the first gold entity (0 if absent from the top 10);
- nDCG@10: binary relevance over the top 10 distinct entities, ideal = all gold entities first.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from kmed.eval.dataset import read_cases
from kmed.eval.stats import p50_p95
from kmed.paths import PROJECT_ROOT

DEFAULT_DATA = PROJECT_ROOT / "data" / "eval" / "retrieval_dev.jsonl"
MODES = {"bm25": ("bm25",), "dense": ("dense",), "kg": ("kg",), "bm25+kg": ("bm25", "kg"), "hybrid": ("bm25", "dense", "kg")}
DEPTH = 30  # passages fetched per query before collapsing to entities


@dataclass
class RetrievalCase:
    id: str
    query: str
    gold: list[str]
    kind: str = ""


def load_cases(path: str | Path | None = None) -> list[RetrievalCase]:
    return read_cases(
        path or DEFAULT_DATA,
        lambda row: RetrievalCase(str(row["id"]), row["query"], list(row["gold"]), row.get("kind", "")),
        '{"id", "query", "gold": [...]}',
    )


def entity_ranking(hits) -> list[str]:
    seen: dict[str, None] = {}
    for hit in hits:
        ids = hit.metadata.get("entity_ids") or []
        if ids:
            seen.setdefault(ids[0], None)
    return list(seen)


def score_ranking(ranking: list[str], gold: list[str]) -> dict[str, float]:
    gold_set = set(gold)
    out = {f"recall@{k}": len(gold_set & set(ranking[:k])) / len(gold_set) for k in (1, 5, 10)}
    first = next((i for i, e in enumerate(ranking[:10]) if e in gold_set), None)
    out["mrr"] = 0.0 if first is None else 1.0 / (first + 1)
    dcg = sum(1.0 / math.log2(i + 2) for i, e in enumerate(ranking[:10]) if e in gold_set)
    idcg = sum(1.0 / math.log2(i + 2) for i in range(min(len(gold_set), 10)))
    out["ndcg@10"] = dcg / idcg if idcg else 0.0
    return out


def evaluate(assistant, cases: list[RetrievalCase], modes: dict = MODES, rows: list[dict] | None = None) -> dict:
    """The summary; one row per query (its scores in every mode, top entities) is appended to ``rows`` when given."""
    retriever = assistant.retriever
    report: dict = {"queries": len(cases), "modes": {}, "failures": {}}
    per_case = {case.id: {"id": case.id, "query": case.query, "kind": case.kind, "gold": case.gold, "modes": {}}
                for case in cases}
    for name, mode in modes.items():
        if "dense" in mode and retriever.a.faiss is None:
            continue
        totals: dict[str, list[float]] = {}
        latencies = []
        misses = []
        for case in cases:
            started = time.perf_counter()
            hits = retriever.search(case.query, k=DEPTH, modes=mode)
            latencies.append((time.perf_counter() - started) * 1000)
            scores = score_ranking(entity_ranking(hits), case.gold)
            per_case[case.id]["modes"][name] = {**{k: round(v, 4) for k, v in scores.items()},
                                                "top": entity_ranking(hits)[:5]}
            for key, value in scores.items():
                totals.setdefault(key, []).append(value)
            if scores["recall@5"] == 0 and name == "hybrid":
                misses.append({"id": case.id, "query": case.query, "gold": case.gold, "top": entity_ranking(hits)[:5]})
        metrics = {key: round(statistics.fmean(values), 4) for key, values in totals.items()}
        metrics.update(p50_p95(latencies, 2, "_ms"))
        report["modes"][name] = metrics
        if misses:
            report["failures"][name] = misses[:25]
    if rows is not None:
        rows.extend(per_case.values())
    return report
