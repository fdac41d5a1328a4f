"""Synthetic-scale retrieval benchmark, one index per process so peak memory is its own.

    python -m kmed.eval.bench_scale --n 100000 --index hnsw --dim 256 --queries 200

Vectors are random unit vectors and BM25 documents random token lists drawn from a Zipf-like
vocabulary; latency and memory depend on sizes and shapes, not on the values.
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import numpy as np

from kmed.eval.stats import p50_p95


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_faiss(n: int, kind: str, dim: int, queries: int, seed: int = 0) -> dict:
    import faiss

    rng = np.random.default_rng(seed)
    base_rss = _rss_mb()
    vectors = rng.standard_normal((n, dim), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    started = time.perf_counter()
    if kind in ("flat", "hnsw"):  # the product's own builder, so what is timed is what ships
        from kmed.retrieval.dense import FaissIndex

        index = FaissIndex.build(vectors, kind).index
    elif kind == "ivfpq":
        nlist = max(64, int(4 * np.sqrt(n)))
        index = faiss.IndexIVFPQ(faiss.IndexFlatIP(dim), dim, nlist, 32, 8, faiss.METRIC_INNER_PRODUCT)
        index.train(vectors[: min(n, 50_000)])
        index.nprobe = 16
        index.add(vectors)
    else:
        raise SystemExit(f"unknown index {kind}")
    build_s = time.perf_counter() - started
    index_bytes = int(faiss.serialize_index(index).nbytes)
    del vectors
    q = rng.standard_normal((queries, dim), dtype=np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    faiss.omp_set_num_threads(1)
    latencies = []
    for row in q:
        t = time.perf_counter()
        index.search(row[None, :], 10)
        latencies.append((time.perf_counter() - t) * 1000)
    return {"n": n, "index": kind, "dim": dim, "build_s": round(build_s, 2), "index_bytes": index_bytes,
            "peak_rss_mb": round(_rss_mb(), 1), "rss_over_start_mb": round(_rss_mb() - base_rss, 1),
            **p50_p95(latencies, 3, "_ms")}


def bench_bm25(n: int, queries: int, doc_len: int = 40, vocab: int = 50_000, seed: int = 0) -> dict:
    import bm25s

    rng = np.random.default_rng(seed)
    base_rss = _rss_mb()
    ids = (rng.zipf(1.3, size=(n, doc_len)) % vocab).astype(np.int64)
    docs = [[f"t{i}" for i in row] for row in ids]
    started = time.perf_counter()
    retriever = bm25s.BM25(method="robertson")
    retriever.index(docs, show_progress=False)
    build_s = time.perf_counter() - started
    del docs
    latencies = []
    for _ in range(queries):
        query = [f"t{i}" for i in (rng.zipf(1.3, size=6) % vocab)]
        query = [t for t in query if t in retriever.vocab_dict] or ["t1"]
        t = time.perf_counter()
        scores = retriever.get_scores(query)
        np.argpartition(-scores, 10)[:10]
        latencies.append((time.perf_counter() - t) * 1000)
    return {"n": n, "index": "bm25", "build_s": round(build_s, 2), "peak_rss_mb": round(_rss_mb(), 1),
            "rss_over_start_mb": round(_rss_mb() - base_rss, 1),
            **p50_p95(latencies, 3, "_ms")}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--index", choices=["flat", "hnsw", "ivfpq", "bm25"], required=True)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    if args.index == "bm25":
        result = bench_bm25(args.n, args.queries)
    else:
        result = bench_faiss(args.n, args.index, args.dim, args.queries)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
