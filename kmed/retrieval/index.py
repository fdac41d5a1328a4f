"""Build, check and load the search index: a folder of plain files with a manifest.

    kmed build index [--with-processed]      # → indexes/default/

    indexes/default/manifest.json   inputs' hashes, versions, counts, build time, embedder
                    kb.json         the KB as validated JSON (what a session reads instead of the YAML)
                    terms.json      Kiwi user words, surface forms and their morpheme keys
                    kg.json         the knowledge graph (node-link JSON)
                    passages.jsonl  every passage with metadata
                    bm25/           bm25s arrays (read with numpy)
                    dense/          embedder, vectors.npy, text hashes, faiss.index

The index holds everything a session needs, so loading parses no YAML and runs no Kiwi analysis
over the dictionary; whether it is current is decided by hashing the KB files (``kb_file_hashes``)
against the manifest. A build writes to a temporary folder beside the target and swaps it in at the
end, so an interrupted build leaves the previous index usable. Vectors of passages whose text did
not change are reused when the embedder is the same, so a small KB edit re-embeds only what changed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from kmed.artifacts import file_sha256, swap_in
from kmed.data.kb import KnowledgeBase, load_kb_or_fail
from kmed.errors import IndexMissingError, IndexStaleError
from kmed.kg.graph import build_graph, graph_from_json, graph_to_json, merge_extra_edges
from kmed.kg.terms import TermDictionary, kiwi_version
from kmed.paths import default_index_dir, default_kb_dir, default_processed_dir
from kmed.retrieval.bm25 import BM25Index, analyze
from kmed.retrieval.chunking import kb_passages
from kmed.retrieval.config import RetrievalConfig
from kmed.retrieval.dense import (
    KIWI_STATIC,
    Embedder,
    FaissIndex,
    KiwiStaticEmbedder,
    make_embedder,
    training_pairs,
)
from kmed.retrieval.passages import Passage, read_jsonl, write_jsonl

if TYPE_CHECKING:
    import networkx as nx

# Bump when the artifacts, the term-dictionary keys or the stored sentence ends change meaning.
# 5: kb.json, stored keys. 6: no sentence boundary after a connective -어/-아 read as final (text_ko).
FORMAT_VERSION = 6
# Files a usable index must hold (dense/ only when the config enables it).
REQUIRED = ("kb.json", "terms.json", "kg.json", "passages.jsonl", "bm25")


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _versions() -> dict:
    out = {}
    for pkg in ("kmed", "kiwipiepy", "bm25s", "faiss-cpu", "sentence-transformers", "torch", "networkx"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def processed_inputs(with_processed: bool) -> dict[str, str]:
    """Hashes of the AI Hub outputs an index includes (``data/processed``), if asked for."""
    if not with_processed:
        return {}
    root = default_processed_dir()
    files = [root / "passages.jsonl", *sorted((root / "kg_edges").glob("*.jsonl"))]
    return {str(p.relative_to(root)): file_sha256(p) for p in files if p.exists()}


def kb_digest(kb: KnowledgeBase | str) -> str:
    """The ``kb_hash`` an index records: a parsed KB's, or a digest from ``kb.combined_hash``."""
    return kb if isinstance(kb, str) else kb.content_hash()


def expected_inputs(kb: KnowledgeBase | str, config: RetrievalConfig, with_processed: bool) -> dict:
    return {
        "format": FORMAT_VERSION,
        "kb_hash": kb_digest(kb),
        "analyzer": kiwi_version(),
        "config": config.fingerprint(),
        "processed": processed_inputs(with_processed),
    }


@dataclass(frozen=True)
class IndexArtifacts:
    """Everything a session reads from a built index (``load_index``), one typed field per file.

    The row counts must agree (BM25 documents and FAISS vectors, one per passage), and dense parts
    come as a pair, or construction raises ``ValueError`` (``load_index`` reports it as a corrupt index).
    """

    folder: Path
    manifest: dict  # manifest.json as written by build_index: inputs, versions, counts, dense
    terms: TermDictionary  # terms.json: Kiwi user words and morpheme keys
    graph: nx.MultiDiGraph  # kg.json
    passages: list[Passage]  # passages.jsonl, in index order (BM25 and FAISS row i is passage i)
    bm25: BM25Index  # bm25/
    embedder: Embedder | None  # dense/embedder (kiwi-static) or the named model; None without dense
    faiss: FaissIndex | None  # dense/faiss.index; None without dense
    kb: KnowledgeBase | None = None  # kb.json, or the parsed KB the caller passed

    def __post_init__(self):
        if self.bm25.num_docs != len(self.passages):
            raise ValueError(f"BM25 has {self.bm25.num_docs} documents for {len(self.passages)} passages")
        if (self.embedder is None) != (self.faiss is None):
            raise ValueError("the dense embedder and its FAISS index come together")
        if self.faiss is not None and self.faiss.index.ntotal != len(self.passages):
            raise ValueError(f"FAISS has {self.faiss.index.ntotal} vectors for {len(self.passages)} passages")


def read_manifest(folder: Path) -> dict | None:
    try:
        return json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def check_index(folder: Path, kb: KnowledgeBase | str, config: RetrievalConfig) -> str | None:
    """None when the index matches the KB (parsed, or its files' digest) and config; otherwise why it must be rebuilt."""
    manifest = read_manifest(folder)
    if manifest is None:
        return "missing" if not folder.exists() else "corrupt (manifest.json unreadable)"
    inputs = manifest.get("inputs", {})
    if not isinstance(inputs, dict):
        return "corrupt (manifest.json has no inputs)"
    with_processed = bool(inputs.get("processed"))
    if inputs.get("format") != FORMAT_VERSION:
        return f"stale (format {inputs.get('format')}; this kmed reads format {FORMAT_VERSION})"
    if inputs != expected_inputs(kb, config, with_processed):
        return "stale (the KB, config, Kiwi or processed data changed since it was built)"
    for name in REQUIRED:
        if not (folder / name).exists():
            return f"corrupt ({name} is missing)"
    return None


def build_index(
    kb: KnowledgeBase | None = None,
    folder: Path | None = None,
    config: RetrievalConfig | None = None,
    with_processed: bool = False,
    progress=None,
) -> dict:
    """Build into a temporary folder and swap it in. Returns the manifest."""
    started = time.perf_counter()
    kb = kb or load_kb_or_fail()
    config = config or RetrievalConfig.load()
    folder = Path(folder or default_index_dir() / "default")
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.parent / f".{folder.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    step = progress or (lambda message, fraction: None)
    try:
        (tmp / "kb.json").write_text(json.dumps(kb.to_snapshot(), ensure_ascii=False), encoding="utf-8")
        step("용어 사전(Kiwi)", 0.05)
        terms = TermDictionary.from_kb(kb)
        (tmp / "terms.json").write_text(json.dumps(terms.to_dict(), ensure_ascii=False), encoding="utf-8")
        step("지식그래프", 0.2)
        graph = build_graph(kb)
        if with_processed:
            merge_extra_edges(graph, default_processed_dir() / "kg_edges")
        (tmp / "kg.json").write_text(json.dumps(graph_to_json(graph), ensure_ascii=False), encoding="utf-8")
        step("문단 나누기", 0.3)
        passages = list(kb_passages(kb, config.max_chars))
        if with_processed and (default_processed_dir() / "passages.jsonl").exists():
            passages.extend(read_jsonl(default_processed_dir() / "passages.jsonl"))
        write_jsonl(passages, tmp / "passages.jsonl")
        step("BM25", 0.45)
        analyzer = _analyzer(terms, memo={})
        docs_tokens = [analyzer(p.title + " " + p.text) for p in passages]
        BM25Index.build(docs_tokens).save(tmp / "bm25")
        dense_info = None
        if config.dense.enabled:
            dense_info = _build_dense(kb, analyzer, passages, config, tmp / "dense", folder / "dense", step)
        manifest = {
            "name": folder.name,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "build_seconds": round(time.perf_counter() - started, 2),
            "inputs": expected_inputs(kb, config, with_processed),
            "kb_files": kb.files,
            "versions": _versions(),
            "counts": {
                "passages": len(passages),
                "kb_passages": sum(1 for p in passages if p.metadata.get("entity_type") != "aihub"),
                "processed_passages": sum(1 for p in passages if p.metadata.get("entity_type") == "aihub"),
                "kg_nodes": graph.number_of_nodes(),
                "kg_edges": graph.number_of_edges(),
                "surface_forms": terms.surface_count(),
                "kiwi_user_words": len(terms.user_words),
                "kiwi_dict_words": len(terms.dict_words),
            },
            "dense": dense_info,
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
        step("교체", 0.98)
        swap_in(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    step("완료", 1.0)
    return manifest


def _build_dense(kb, analyzer, passages, config, out: Path, previous: Path, step) -> dict:
    out.mkdir()
    texts = [p.title + " " + p.text for p in passages]
    hashes = [_sha(t) for t in texts]
    spec = config.dense.model
    if spec == KIWI_STATIC:
        step("밀집 임베딩 학습", 0.55)
        pairs = training_pairs(kb, passages)
        KiwiStaticEmbedder.train(pairs, analyzer, steps=config.dense.train_steps).save(out / "embedder")
        # A vector is reusable only from the very same weights and vocabulary read by the same Kiwi: the
        # same training pairs under another Kiwi analysis train other weights.
        weights = sorted((out / "embedder").iterdir())
        fingerprint = f"kiwi-static:{kiwi_version()}:" + _sha("".join(file_sha256(f) for f in weights))
        # Encode with the same numpy reader queries use, so build and query vectors agree exactly.
        embedder = make_embedder(spec, out / "embedder", analyzer)
    else:
        embedder = make_embedder(spec)
        fingerprint = "st:" + spec
    step("임베딩", 0.75)
    vectors, reused = _reuse_vectors(previous, fingerprint, hashes)
    todo = [i for i, v in enumerate(vectors) if v is None]
    if todo:
        fresh = embedder.encode([texts[i] for i in todo])
        for i, vector in zip(todo, fresh, strict=True):
            vectors[i] = vector
    matrix = np.vstack(vectors).astype(np.float32) if vectors else np.zeros((0, embedder.dim), np.float32)
    np.save(out / "vectors.npy", matrix)
    (out / "hashes.json").write_text(json.dumps({"fingerprint": fingerprint, "hashes": hashes}), encoding="utf-8")
    step("FAISS", 0.9)
    index = FaissIndex.build(matrix, config.dense.index_type)
    index.save(out / "faiss.index")
    return {"model": spec, "fingerprint": fingerprint, "dim": int(matrix.shape[1]), "index_type": index.kind,
            "memory_bytes": index.memory_bytes(), "embedded": len(todo), "reused": reused}


def _reuse_vectors(previous: Path, fingerprint: str, hashes: list[str]) -> tuple[list, int]:
    vectors: list = [None] * len(hashes)
    try:
        old = json.loads((previous / "hashes.json").read_text(encoding="utf-8"))
        old_vectors = np.load(previous / "vectors.npy")
    except (OSError, ValueError):
        return vectors, 0
    if old.get("fingerprint") != fingerprint or len(old.get("hashes", [])) != len(old_vectors):
        return vectors, 0
    by_hash = {h: i for i, h in enumerate(old["hashes"])}
    reused = 0
    for i, h in enumerate(hashes):
        if h in by_hash:
            vectors[i] = old_vectors[by_hash[h]]
            reused += 1
    return vectors, reused


def _analyzer(terms: TermDictionary, memo: dict | None = None):
    """Kiwi analysis as a function; with ``memo``, each distinct text is analysed once per build."""
    if memo is None:
        return lambda text: analyze(terms, text)

    def cached(text: str) -> list[str]:
        if text not in memo:
            memo[text] = analyze(terms, text)
        return memo[text]

    return cached


def _read_passages(path: Path) -> list[Passage]:
    """The index's JSONL parsed as one JSON array: one C-level parse instead of one per line."""
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [Passage.from_dict(row) for row in json.loads("[" + ",".join(lines) + "]")]


def load_index(folder: Path, kb: KnowledgeBase | str, config: RetrievalConfig, strict: bool = True,
               kb_root: Path | None = None) -> IndexArtifacts:
    """Read a built index. ``kb``: the parsed KB, reused as is, or its files' digest, and then the KB
    comes from the index's ``kb.json`` (with ``kb_root`` as its root). Never parses the YAML."""
    problem = check_index(folder, kb, config)
    if problem and strict:
        error = IndexMissingError if problem == "missing" else IndexStaleError
        raise error(f"검색 인덱스({folder})가 {problem} 상태예요.", "kmed build index 로 다시 만드세요.")
    try:
        manifest = read_manifest(folder) or {}
        if isinstance(kb, KnowledgeBase):
            snapshot = kb
        else:
            data = json.loads((folder / "kb.json").read_text(encoding="utf-8"))
            snapshot = KnowledgeBase.from_snapshot(data, kb_root or default_kb_dir())
        terms = TermDictionary.from_dict(json.loads((folder / "terms.json").read_text(encoding="utf-8")))
        graph = graph_from_json(json.loads((folder / "kg.json").read_text(encoding="utf-8")))
        passages = _read_passages(folder / "passages.jsonl")
        bm25 = BM25Index.load(folder / "bm25")
        embedder = faiss_index = None
        dense = manifest.get("dense")
        if dense:
            embedder = make_embedder(dense["model"], folder / "dense" / "embedder", _analyzer(terms))
            faiss_index = FaissIndex.load(folder / "dense" / "faiss.index", dense["index_type"])
        return IndexArtifacts(folder, manifest, terms, graph, passages, bm25, embedder, faiss_index, snapshot)
    except (OSError, ValueError, KeyError, TypeError, IndexError, RuntimeError) as exc:
        raise IndexStaleError(
            f"검색 인덱스({folder})가 손상됐어요: {type(exc).__name__}: {str(exc)[:200]}", "kmed build index 로 다시 만드세요."
        ) from exc
