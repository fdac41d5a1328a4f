"""Knowledge from AI Hub records: retrieval passages, KG co-occurrence edges, grounded contexts.

- ``build_passages``: source texts and answers → sentence-aligned ``Passage`` objects with metadata
  and provenance. Medical QA enters only from the splits in ``passages.qa_answer_splits`` (train
  by default) so evaluation answers never sit in the index.
- ``cooccurrence_edges``: entity ids linked in the same passage → ``co_occurs`` edges, weighted
  ``count / sqrt(n_src * n_dst)`` (1.0 when two entities always appear together).
- ``Grounder``: BM25 over the document passages; cites ``[n]`` after each answer sentence whose
  content words a context passage covers.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from kmed.data.aihub.records import QA, Document, Record, dataset_title
from kmed.data.aihub.text import chunk, content_terms, sentences
from kmed.data.passages import Passage

Linker = Callable[[str], list[str]]  # text → linked KB entity ids
_MEDICAL_QA = ("mcq", "short", "descriptive")


def source_label(record: Record) -> str:
    parts = [f"AI Hub {dataset_title(record.prov.dataset)}"]
    if isinstance(record, Document):
        detail = record.source_spec or record.source_kind
        if detail:
            parts.append(detail + (f" ({record.year})" if record.year else ""))
    return " · ".join(parts)


def qa_passage_text(qa: QA) -> str:
    answer = qa.answer_text()
    lines = [qa.question, f"정답: {answer}" if qa.options else answer]
    if qa.explanation:
        lines.append(qa.explanation)
    return "\n".join(line for line in lines if line)


def _metadata(record: Record, lang: str, department: str) -> dict:
    meta = {
        "entity_type": "aihub",
        "dataset": record.prov.dataset,
        "split": record.split,
        "aihub_split": record.prov.aihub_split,
        "origin": record.prov.file,
        "source": source_label(record),
        "lang": lang,
        "domain": record.domain,
        "department": department,
        "record_id": record.uid,
        "kind": record.kind,
        "entity_ids": [],
    }
    for key in ("disease", "intention"):
        if record.meta.get(key):
            meta[key] = record.meta[key]
    return meta


def build_passages(
    records: Iterable[Record],
    max_chars: int = 220,
    qa_answer_splits: Sequence[str] = ("train",),
    linker: Linker | None = None,
    on_passage: Callable[[], None] | None = None,
) -> list[Passage]:
    passages: list[Passage] = []
    for record in records:
        if isinstance(record, Document):
            pieces = chunk(record.text, max_chars)
            for i, piece in enumerate(pieces):
                title = record.title if len(pieces) == 1 else f"{record.title} ({i + 1}/{len(pieces)})"
                passages.append(Passage(f"aihub:{record.uid}#{i}", title, piece, _metadata(record, record.lang, record.department)))
        elif isinstance(record, QA) and record.q_type in _MEDICAL_QA and record.split in qa_answer_splits:
            title = sentences(record.question)[0][:80] if record.question else record.uid
            text = qa_passage_text(record)
            passages.append(Passage(f"aihub:{record.uid}", title, text[: max_chars * 3], _metadata(record, record.lang, record.department)))
    if linker is not None:
        link_passages(passages, linker, on_passage)
    return passages


def link_passages(passages: Sequence[Passage], linker: Linker, on_passage: Callable[[], None] | None = None) -> None:
    """Set ``metadata["entity_ids"]``: the KB entities linked in the title and text, in order, once each."""
    for passage in passages:
        passage.metadata["entity_ids"] = list(dict.fromkeys(linker(f"{passage.title}\n{passage.text}")))
        if on_passage:
            on_passage()


def cooccurrence_edges(passages: Sequence[Passage], min_count: int = 2, max_examples: int = 3) -> list[dict]:
    """One edge per (src, dst, dataset), src < dst, from entities linked in the same passage."""
    pair_counts: Counter = Counter()
    entity_counts: Counter = Counter()
    examples: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    for passage in passages:
        ids = sorted(set(passage.metadata.get("entity_ids") or []))
        dataset = passage.metadata.get("dataset", "")
        for entity in ids:
            entity_counts[(entity, dataset)] += 1
        for i, src in enumerate(ids):
            for dst in ids[i + 1 :]:
                key = (src, dst, dataset)
                pair_counts[key] += 1
                record_id = passage.metadata.get("record_id", passage.id)
                if len(examples[key]) < max_examples and record_id not in examples[key]:
                    examples[key].append(record_id)
    edges = []
    for (src, dst, dataset), count in sorted(pair_counts.items()):
        if count < min_count:
            continue
        weight = count / math.sqrt(entity_counts[(src, dataset)] * entity_counts[(dst, dataset)])
        edges.append(
            {
                "src": src,
                "dst": dst,
                "type": "co_occurs",
                "weight": round(weight, 4),
                "provenance": {"source": "aihub", "dataset": dataset, "count": count, "examples": examples[(src, dst, dataset)]},
            }
        )
    return edges


@dataclass
class Grounded:
    context: list[dict]  # [{"number", "title", "text", "source", "id"}]
    answer: str  # with [n] after grounded sentences
    grounded: bool
    cited: list[int]


class Grounder:
    """BM25 (bm25s) over document passages, on content words; used to build grounded SFT records."""

    def __init__(self, passages: Sequence[Passage], top_k: int = 3, min_overlap: float = 0.5):
        self.passages = [p for p in passages if p.metadata.get("kind") == "document"]
        self.top_k = top_k
        self.min_overlap = min_overlap
        self._index = None
        self._hits: dict[str, list[int]] = {}
        if self.passages:
            import bm25s

            self._index = bm25s.BM25()
            self._index.index([self._terms_of(i) or ["∅"] for i in range(len(self.passages))], show_progress=False)

    def _terms_of(self, index: int) -> list[str]:
        passage = self.passages[index]
        return content_terms(f"{passage.title} {passage.text}")

    def retrieve_many(self, queries: Sequence[str], threads: int = 4) -> list[list[int]]:
        """Top passages per query (indexes into ``self.passages``), batched: far faster than one by one."""
        if self._index is None:
            return [[] for _ in queries]
        k = min(self.top_k, len(self.passages))
        tokens = [content_terms(q) or ["∅"] for q in queries]
        docs, scores = self._index.retrieve(tokens, k=k, show_progress=False, n_threads=threads)
        return [[int(d) for d, s in zip(row_docs, row_scores, strict=True) if s > 0] for row_docs, row_scores in zip(docs, scores, strict=True)]

    def retrieve(self, query: str) -> list[int]:
        return self.retrieve_many([query], threads=0)[0] if content_terms(query) else []

    def prefetch(self, items: Sequence[tuple[str, str]]) -> None:
        """Retrieve for many (question, answer) pairs at once; ``ground`` then reuses the hits."""
        keys = [f"{q} {a}" for q, a in items if f"{q} {a}" not in self._hits]
        for key, hits in zip(keys, self.retrieve_many(keys), strict=True):
            self._hits[key] = hits

    def ground(self, question: str, answer: str) -> Grounded:
        key = f"{question} {answer}"
        hits = self._hits.pop(key) if key in self._hits else self.retrieve(key)
        context = [
            {
                "number": n,
                "title": self.passages[i].title,
                "text": self.passages[i].text,
                "source": self.passages[i].metadata.get("source", ""),
                "id": self.passages[i].id,
            }
            for n, i in enumerate(hits, start=1)
        ]
        cited: list[int] = []
        out: list[str] = []
        hit_terms = [set(self._terms_of(i)) for i in hits]  # only the hits: big corpora keep no term sets
        for sentence in sentences(answer) or [answer]:
            terms = set(content_terms(sentence))
            best, best_overlap = 0, 0.0
            for n, passage_terms in enumerate(hit_terms, start=1):
                overlap = len(terms & passage_terms) / len(terms) if terms else 0.0
                if overlap > best_overlap:
                    best, best_overlap = n, overlap
            if best and best_overlap >= self.min_overlap:
                out.append(f"{sentence} [{best}]")
                cited.append(best)
            else:
                out.append(sentence)
        return Grounded(context, " ".join(out), bool(cited), sorted(set(cited)))
