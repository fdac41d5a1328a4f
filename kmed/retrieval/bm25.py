"""BM25 over Kiwi morphemes, on bm25s; ``BM25Retriever`` is its ``Retriever``.

Documents and queries are analysed by the term dictionary's Kiwi (user words registered), so
"역류성식도염이" and "역류성 식도염은" give the same tokens. Queries are normalised through the
dictionary: every linked lay form ("속이 쓰려요") adds the canonical term's tokens ("속쓰림"); the
``Query`` carries them (``Query.morphemes``), so a search runs no Kiwi of its own.

The index is a folder of plain files written by bm25s (``params.index.json``, ``vocab.index.json``,
``*.csc.index.npy``: every term's precomputed BM25 score per document). A build uses bm25s; loading
and scoring read those files with numpy alone, the way bm25s scores them, so a session does not
import bm25s (with its tqdm, asyncio and scipy imports). ``tests/retrieval/test_retrieval.py`` checks scores
against ``rank_bm25`` as an oracle.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from kmed.kg.terms import TermDictionary
from kmed.retrieval.passages import Hit, Passage
from kmed.retrieval.query import Query, morphemes_of

K1, B = 1.5, 0.75  # the usual Okapi defaults; short Korean passages gave no gain from tuning them


def analyze(terms: TermDictionary, text: str) -> list[str]:
    """Content morphemes as ``form/coarse-tag`` strings (so 열/N and 열/V differ)."""
    return morphemes_of(terms.tokenize(text))


class BM25Index:
    """Term → per-document BM25 scores as a CSC matrix (``data``, ``indices``, ``indptr``)."""

    def __init__(self, vocab: dict[str, int], data: np.ndarray, indices: np.ndarray, indptr: np.ndarray,
                 num_docs: int, retriever=None):
        self.vocab = vocab
        self.data, self.indices, self.indptr = data, indices, indptr
        self.num_docs = int(num_docs)
        self._retriever = retriever  # the bm25s object of a build, which writes the files

    @classmethod
    def build(cls, docs_tokens: list[list[str]]) -> BM25Index:
        import bm25s

        retriever = bm25s.BM25(method="robertson", k1=K1, b=B)
        # An empty document would break bm25s's averages; a placeholder token keeps positions aligned.
        retriever.index([tokens or ["<empty>"] for tokens in docs_tokens], show_progress=False)
        scores = retriever.scores
        return cls(retriever.vocab_dict, scores["data"], scores["indices"], scores["indptr"], scores["num_docs"], retriever)

    def scores(self, query_tokens: list[str], mask: np.ndarray | None = None) -> np.ndarray:
        """Summed term scores per document, in the order bm25s sums them (so equal to its own)."""
        scores = np.zeros(self.num_docs, dtype=np.float32)
        for token in query_tokens:
            term = self.vocab.get(token)
            if term is None or term + 1 >= len(self.indptr):  # bm25s's "" placeholder has no column
                continue
            start, end = self.indptr[term], self.indptr[term + 1]
            np.add.at(scores, self.indices[start:end], self.data[start:end])
        if mask is not None:
            scores = np.where(mask, scores, 0.0).astype(np.float32)
        return scores

    def save(self, folder: Path) -> None:
        if self._retriever is None:
            raise ValueError("only a freshly built BM25 index can be saved")
        self._retriever.save(str(folder))

    @classmethod
    def load(cls, folder: Path) -> BM25Index:
        """Read bm25s's files; raises ``OSError``/``ValueError``/``KeyError`` when they are missing or garbled."""
        folder = Path(folder)
        params = json.loads((folder / "params.index.json").read_text(encoding="utf-8"))
        vocab = json.loads((folder / "vocab.index.json").read_text(encoding="utf-8"))
        if params.get("method", "robertson") != "robertson":
            raise ValueError(f"unsupported BM25 method {params.get('method')!r}")
        arrays = [np.load(folder / f"{name}.csc.index.npy", allow_pickle=False) for name in ("data", "indices", "indptr")]
        data, indices, indptr = arrays
        if len(data) != len(indices) or not len(indptr) or int(indptr[-1]) != len(data) or len(indptr) > len(vocab) + 1:
            raise ValueError("BM25 arrays do not match the vocabulary")
        return cls(vocab, data, indices, indptr, params["num_docs"])


class BM25Retriever:
    """The index's passages ranked by BM25 over ``Query.morphemes``; passages scoring 0 are left out."""

    name = "bm25"

    def __init__(self, index: BM25Index, passages: list[Passage]):
        self.index = index
        self.passages = passages

    def search(self, query: Query, k: int, within: np.ndarray | None = None) -> list[Hit]:
        scores = self.index.scores(list(query.morphemes), within)
        top = np.argsort(-scores)[:k]
        return [Hit.of(self.passages[i], float(scores[i])) for i in top if scores[i] > 0]
