"""BM25 over Kiwi morphemes, on bm25s.

Documents and queries are analysed by the term dictionary's Kiwi (user words registered), so
"역류성식도염이" and "역류성 식도염은" give the same tokens. Queries are normalised through the
dictionary: every linked lay form ("속이 쓰려요") adds the canonical term's tokens ("속쓰림").

The index is a folder of plain files written by bm25s (``params.index.json``, ``*.npy``).
``tests/test_retrieval.py`` checks scores against ``rank_bm25`` as an oracle.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kmed.kg.terms import TermDictionary, content_units

K1, B = 1.5, 0.75  # the usual Okapi defaults; short Korean passages gave no gain from tuning them


def analyze(terms: TermDictionary, text: str) -> list[str]:
    """Content morphemes as ``form/coarse-tag`` strings (so 열/N and 열/V differ)."""
    return [f"{form}/{tag}" for form, tag, _ in content_units(terms.tokenize(text))]


class BM25Index:
    def __init__(self, retriever=None):
        self.retriever = retriever

    @classmethod
    def build(cls, docs_tokens: list[list[str]]) -> BM25Index:
        import bm25s

        retriever = bm25s.BM25(method="robertson", k1=K1, b=B)
        # An empty document would break bm25s's averages; a placeholder token keeps positions aligned.
        retriever.index([tokens or ["<empty>"] for tokens in docs_tokens], show_progress=False)
        return cls(retriever)

    def scores(self, query_tokens: list[str], mask: np.ndarray | None = None) -> np.ndarray:
        vocab = self.retriever.vocab_dict
        known = [t for t in query_tokens if t in vocab]
        n_docs = self.retriever.scores["num_docs"]
        if not known:
            return np.zeros(n_docs, dtype=np.float32)
        scores = self.retriever.get_scores(known).astype(np.float32)
        if mask is not None:
            scores = np.where(mask, scores, 0.0)
        return scores

    def save(self, folder: Path) -> None:
        self.retriever.save(str(folder))

    @classmethod
    def load(cls, folder: Path) -> BM25Index:
        import bm25s

        return cls(bm25s.BM25.load(str(folder), mmap=False))
