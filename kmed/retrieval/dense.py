"""Dense retrieval: embedders behind one factory, a FAISS index whose type follows corpus size, and
``DenseRetriever``, the ``Retriever`` that joins them.

    embedder = make_embedder("kiwi-static", folder=index / "dense" / "embedder", analyzer=analyzer)
    embedder = make_embedder("BAAI/bge-m3")              # or "st:<name>", or a local model folder

Specs ``make_embedder`` accepts (``configs/retrieval.yaml``: ``dense.model``):
- ``"kiwi-static"`` (default): a mean-pooled embedding bag over Kiwi morphemes, trained at build
  time on the KB itself (lay terms → their entries' passages) with in-batch negatives
  (``KiwiStaticEmbedder.train``). Seeded and deterministic, a few seconds on 2 cores, no downloaded
  weights. Trained with torch alone and saved in sentence-transformers' ``StaticEmbedding`` layout;
  the factory reads it back with numpy (``StaticNumpyEncoder``), so neither a build nor a session
  imports sentence-transformers (and, through transformers, peft and bitsandbytes).
- a sentence-transformers model the user has: ``"st:<name or path>"``, a local folder, or a hub id
  ``"org/name"`` (e.g. KURE, bge-m3). Anything else is a ``ConfigError`` that lists these.

FAISS: exact inner product (``IndexFlatIP``) below ``HNSW_THRESHOLD`` vectors, HNSW above.
"""

from __future__ import annotations

import itertools
import json
import random
import re
from pathlib import Path
from typing import Protocol

import numpy as np

from kmed.errors import ConfigError, KmedError, MissingExtraError
from kmed.retrieval.passages import Hit, Passage
from kmed.retrieval.query import Query

HNSW_THRESHOLD = 50_000  # flat search stays under ~5 ms/query in batches up to here (docs/benchmarks.md)
STATIC_DIM = 256  # more dims gave no recall gain on the KB dev set; 256 keeps the index small
STATIC_STEPS = 300
STATIC_BATCH = 64
KIWI_STATIC = "kiwi-static"
ST_PREFIX = "st:"
SPECS_HELP = (f"'{KIWI_STATIC}'(기본값), '{ST_PREFIX}<모델 이름 또는 경로>', 내려받아 둔 모델 폴더 경로, "
              "또는 허브 이름 'org/name'(예: BAAI/bge-m3)")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


class Embedder(Protocol):
    """What dense retrieval needs of an embedder: its ``spec``, ``dim``, and unit-length vectors."""

    spec: str

    @property
    def dim(self) -> int: ...

    def encode(self, texts: list[str]) -> np.ndarray: ...

    def encode_query(self, query: Query) -> np.ndarray: ...


def make_embedder(spec: str, folder: Path | None = None, analyzer=None) -> Embedder:
    """The embedder a ``dense.model`` spec names. ``kiwi-static`` is read from ``folder`` (written by
    ``kmed build index``) with ``analyzer`` (text → morphemes) for document texts.

    Raises ``ConfigError`` for a spec it does not know (listing those it does), ``MissingExtraError``
    when sentence-transformers is not installed, and ``OSError``/``ValueError`` for unreadable files.
    """
    spec = (spec or "").strip()
    if spec == KIWI_STATIC:
        if folder is None:
            raise ConfigError("kiwi-static 임베딩은 검색 인덱스와 함께 학습돼요.", "kmed build index 로 인덱스를 만드세요.")
        return StaticNumpyEncoder(folder, analyzer)
    name = spec[len(ST_PREFIX):].strip() if spec.startswith(ST_PREFIX) else spec
    if name and (spec.startswith(ST_PREFIX) or Path(name).expanduser().exists() or _HUB_ID.match(name)):
        return SentenceTransformerEmbedder(name)
    raise ConfigError(f"임베딩 모델 '{spec}'을(를) 알 수 없어요.",
                      f"configs/retrieval.yaml의 dense.model을 다음 중 하나로 쓰세요: {SPECS_HELP}")


def _require_faiss():
    try:
        import faiss
    except ImportError as exc:
        raise KmedError("FAISS가 설치되어 있지 않아요.", "pip install faiss-cpu") from exc
    return faiss


class KiwiStaticEmbedder:
    """A trained embedding matrix over Kiwi morphemes and its word-level tokenizer; ``analyzer`` maps text → tokens.

    Build time only: ``train`` then ``save``; queries read the saved files through ``make_embedder``.
    """

    spec = KIWI_STATIC

    def __init__(self, tokenizer, matrix: np.ndarray, analyzer):
        self.tokenizer = tokenizer
        self.matrix = np.asarray(matrix, dtype=np.float32)
        self.analyzer = analyzer

    @property
    def dim(self) -> int:
        return int(self.matrix.shape[1])

    @classmethod
    def train(cls, pairs: list[tuple[str, str]], analyzer, seed: int = 13, steps: int = STATIC_STEPS) -> KiwiStaticEmbedder:
        """In-batch-negatives training of a mean-pooled embedding bag (what ``StaticEmbedding`` is inside).

        The loop runs on a plain ``torch.nn.EmbeddingBag`` over token ids, which is ~50x faster per
        step than going through ``SentenceTransformer.forward``.
        """
        import torch
        from tokenizers import Tokenizer, models, pre_tokenizers

        analyzed = [(" ".join(analyzer(a)) or "[UNK]", " ".join(analyzer(p)) or "[UNK]") for a, p in pairs]
        vocab = {"[UNK]": 0, "[PAD]": 1}
        for a, p in analyzed:
            for token in (a + " " + p).split():
                vocab.setdefault(token, len(vocab))
        tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
        tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
        ids = {text: tokenizer.encode(text).ids for pair in analyzed for text in pair}
        torch.manual_seed(seed)
        rng = random.Random(seed)
        # One thread: the step is ~1 ms of work, and OpenMP workers spin-wait badly on a busy
        # 2-core machine (measured 2 ms/step with 1 thread vs 210 ms with 2 under load).
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        # Sparse gradients: a step touches a few hundred of the vocabulary's rows, not all of them.
        bag = torch.nn.EmbeddingBag(len(vocab), STATIC_DIM, mode="mean", sparse=True)
        optimizer = torch.optim.SparseAdam(bag.parameters(), lr=0.05)
        scale = 20.0  # cosine-similarity temperature, as in MultipleNegativesRankingLoss

        def embed(texts: list[str]):
            flat = [ids[t] for t in texts]
            offsets = torch.tensor([0, *itertools.accumulate(len(x) for x in flat)][:-1])
            return bag(torch.tensor([i for x in flat for i in x]), offsets)

        for _ in range(steps if len(analyzed) >= STATIC_BATCH else 0):
            batch = rng.sample(analyzed, STATIC_BATCH)
            anchors = torch.nn.functional.normalize(embed([a for a, _ in batch]), dim=-1)
            positives = torch.nn.functional.normalize(embed([p for _, p in batch]), dim=-1)
            logits = scale * anchors @ positives.T
            # Pairs that share a positive text are not negatives of each other.
            same = torch.tensor([[pa == pb for _, pb in batch] for _, pa in batch])
            logits = logits.masked_fill(same & ~torch.eye(len(batch), dtype=torch.bool), -1e4)
            loss = torch.nn.functional.cross_entropy(logits, torch.arange(len(batch)))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        torch.set_num_threads(threads)
        return cls(tokenizer, bag.weight.detach().cpu().numpy().copy(), analyzer)

    def save(self, folder: Path) -> None:
        """The files ``StaticEmbedding.save`` writes, plus the two that let ``SentenceTransformer(folder)`` read them."""
        from safetensors.numpy import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        save_file({"embedding.weight": np.ascontiguousarray(self.matrix)}, str(folder / "model.safetensors"))
        self.tokenizer.save(str(folder / "tokenizer.json"))
        module = {"idx": 0, "name": "0", "path": "", "type": _static_module_type()}
        (folder / "modules.json").write_text(json.dumps([module], indent=2), encoding="utf-8")
        config = {"prompts": {}, "default_prompt_name": None, "similarity_fn_name": "cosine"}
        (folder / "config_sentence_transformers.json").write_text(json.dumps(config, indent=2), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path, analyzer) -> StaticNumpyEncoder:
        """Query-time loading skips torch and sentence-transformers (≈4 s of imports)."""
        return StaticNumpyEncoder(folder, analyzer)


def _static_module_type() -> str:
    """Where this sentence-transformers keeps ``StaticEmbedding``, found without importing it (v6 moved it)."""
    import importlib.util

    spec = importlib.util.find_spec("sentence_transformers")
    for base in (spec.submodule_search_locations or []) if spec else []:
        if (Path(base) / "sentence_transformer" / "modules" / "static_embedding.py").exists():
            return "sentence_transformers.sentence_transformer.modules.static_embedding.StaticEmbedding"
    return "sentence_transformers.models.StaticEmbedding"


class StaticNumpyEncoder:
    """Reads a saved ``StaticEmbedding`` (tokenizer.json + embedding matrix) and mean-pools in numpy.

    Gives the same vectors as ``SentenceTransformer(folder).encode`` (tests/retrieval/test_retrieval.py
    checks parity) at a fraction of the load time.
    """

    spec = KIWI_STATIC

    def __init__(self, folder: Path, analyzer):
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        weights = load_file(str(Path(folder) / "model.safetensors"))
        self.matrix = next(iter(weights.values())).astype(np.float32)
        self.tokenizer = Tokenizer.from_file(str(Path(folder) / "tokenizer.json"))
        self.analyzer = analyzer

    @property
    def dim(self) -> int:
        return int(self.matrix.shape[1])

    def encode_analyzed(self, joined: list[str]) -> np.ndarray:
        out = np.zeros((len(joined), self.dim), dtype=np.float32)
        for row, encoding in enumerate(self.tokenizer.encode_batch(joined)):
            if encoding.ids:
                out[row] = self.matrix[encoding.ids].mean(axis=0)
        return out

    def encode(self, texts: list[str]) -> np.ndarray:
        return _normalize(self.encode_analyzed([" ".join(self.analyzer(t)) or "[UNK]" for t in texts]))

    def encode_query(self, query: Query) -> np.ndarray:
        """The query's own morphemes (text and expansions): no second Kiwi analysis."""
        return _normalize(self.encode_analyzed([" ".join(query.morphemes) or "[UNK]"]))


class SentenceTransformerEmbedder:
    """Any sentence-transformers model the user has locally (name in the HF cache, or a path)."""

    def __init__(self, name_or_path: str):
        self.spec = name_or_path
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise MissingExtraError("이 임베딩 모델에는 sentence-transformers 패키지가 필요한데 설치되어 있지 않아요.",
                                    f"pip install sentence-transformers 로 설치하거나 dense.model을 '{KIWI_STATIC}'로 두세요.") from exc
        try:
            self.model = SentenceTransformer(name_or_path, device="cpu")
        except Exception as exc:  # noqa: BLE001 - hub/IO errors vary by version
            raise ConfigError(
                f"임베딩 모델 '{name_or_path}'을(를) 불러올 수 없어요 ({type(exc).__name__}).",
                "configs/retrieval.yaml의 dense.model을 내려받아 둔 모델 폴더 경로로 바꾸거나, "
                "기본값 'kiwi-static'을 쓰세요.",
            ) from exc

    @property
    def dim(self) -> int:
        return self.model.get_sentence_embedding_dimension()

    def encode(self, texts: list[str]) -> np.ndarray:
        return _normalize(self.model.encode(texts, batch_size=32, convert_to_numpy=True, show_progress_bar=False))

    def encode_query(self, query: Query) -> np.ndarray:
        return self.encode([query.normalised])


def _normalize(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class FaissIndex:
    def __init__(self, index, kind: str):
        self.index = index
        self.kind = kind

    @classmethod
    def build(cls, vectors: np.ndarray, kind: str | None = None) -> FaissIndex:
        faiss = _require_faiss()
        n, dim = vectors.shape
        kind = kind or ("flat" if n < HNSW_THRESHOLD else "hnsw")
        if kind == "flat":
            index = faiss.IndexFlatIP(dim)
        elif kind == "hnsw":
            index = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = 80
            index.hnsw.efSearch = 64
        else:
            raise ConfigError(f"알 수 없는 FAISS 인덱스 종류 '{kind}'", "dense.index_type을 flat 또는 hnsw로 지정하세요.")
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
        return cls(index, kind)

    def search(self, query: np.ndarray, k: int, allowed_ids: np.ndarray | None = None):
        faiss = _require_faiss()
        params = None
        if allowed_ids is not None:
            selector = faiss.IDSelectorBatch(allowed_ids.astype(np.int64))
            params = faiss.SearchParametersHNSW(sel=selector) if self.kind == "hnsw" else faiss.SearchParameters(sel=selector)
        k = min(k, self.index.ntotal)
        scores, ids = self.index.search(np.ascontiguousarray(query, dtype=np.float32), k, params=params)
        return scores, ids

    def memory_bytes(self) -> int:
        faiss = _require_faiss()
        return int(faiss.serialize_index(self.index).nbytes)

    def save(self, path: Path) -> None:
        _require_faiss().write_index(self.index, str(path))

    @classmethod
    def load(cls, path: Path, kind: str) -> FaissIndex:
        return cls(_require_faiss().read_index(str(path)), kind)


class DenseRetriever:
    """The index's passages nearest to the query's vector (cosine, via inner product on unit vectors)."""

    name = "dense"

    def __init__(self, embedder: Embedder, index: FaissIndex, passages: list[Passage]):
        self.embedder = embedder
        self.index = index
        self.passages = passages

    def search(self, query: Query, k: int, within: np.ndarray | None = None) -> list[Hit]:
        allowed = np.flatnonzero(within) if within is not None else None
        if allowed is not None and not len(allowed):
            return []
        scores, ids = self.index.search(self.embedder.encode_query(query), k, allowed)
        return [Hit.of(self.passages[i], float(score)) for score, i in zip(scores[0], ids[0], strict=True) if i >= 0]


def training_pairs(kb, passages) -> list[tuple[str, str]]:
    """(query-like text, passage text) pairs from the KB alone: names and lay terms → their passages.

    Symptom lay terms pair with the symptom sections of conditions that list the symptom, which is
    how "배가 꼬이듯 아파요" learns to land near 장염.
    """
    by_entity: dict[str, list[str]] = {}
    for p in passages:
        ids = p.metadata.get("entity_ids") or []
        if ids:
            by_entity.setdefault(ids[0], []).append(p.title + " " + p.text)
    pairs: list[tuple[str, str]] = []
    for entity in kb.entities():
        for form in entity.surface_forms():
            for text in by_entity.get(entity.id, [])[:4]:
                pairs.append((form, text))
    for condition in kb.conditions.values():
        symptom_texts = [t for t in by_entity.get(condition.id, []) if "증상" in t[:40]] or by_entity.get(condition.id, [])[:1]
        for sym_id in [*condition.symptoms.typical, *condition.symptoms.red_flag]:
            symptom = kb.symptoms.get(sym_id)
            if symptom is None:
                continue
            for form in symptom.surface_forms()[:6]:
                for text in symptom_texts[:1]:
                    pairs.append((form, text))
    return pairs
