"""Exact and near-duplicate removal over records of one kind.

Exact: records whose text is equal once case, spacing and punctuation are ignored.
Near: MinHash over character shingles with LSH banding; a candidate pair is a duplicate when the
estimated Jaccard similarity reaches the threshold. The first record in input order is kept, so the
result is deterministic when the input order is (loaders sort their files).

    kept, removed = dedupe(records, near_threshold=0.9)
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np

from kmed.data.aihub.text import norm_key, shingles

T = TypeVar("T")
_PRIME = np.uint64((1 << 61) - 1)


@dataclass
class DedupeStats:
    exact: int = 0
    near: int = 0
    pairs: list[tuple[str, str]] = field(default_factory=list)  # (removed, kept) uids, for the report


class MinHasher:
    def __init__(self, num_perm: int = 128, shingle: int = 5, seed: int = 1, max_chars: int = 4000):
        rng = np.random.default_rng(seed)
        self.num_perm = num_perm
        self.shingle = shingle
        self.max_chars = max_chars  # long texts: the opening decides (keeps big corpora fast)
        self._a = rng.integers(1, (1 << 31) - 1, size=num_perm, dtype=np.uint64)
        self._b = rng.integers(0, (1 << 31) - 1, size=num_perm, dtype=np.uint64)

    def signature(self, text: str) -> np.ndarray | None:
        grams = shingles(norm_key(text)[: self.max_chars], self.shingle)
        if not grams:
            return None
        hashes = np.fromiter((zlib.crc32(g.encode("utf-8")) for g in grams), dtype=np.uint64, count=len(grams))
        # (a*x + b) mod p, per permutation; the min over shingles is the signature entry.
        values = (np.outer(hashes, self._a) + self._b) % _PRIME
        return values.min(axis=0)


def dedupe(
    records: Sequence[T],
    text_of: Callable[[T], str],
    uid_of: Callable[[T], str],
    near_threshold: float = 0.9,
    num_perm: int = 128,
    bands: int = 32,
    shingle: int = 5,
    min_chars_near: int = 30,
) -> tuple[list[T], DedupeStats]:
    """Drop exact duplicates, then near duplicates (``near_threshold`` ≥ 1 turns near off)."""
    stats = DedupeStats()
    seen: dict[str, str] = {}
    unique: list[T] = []
    for record in records:
        key = norm_key(text_of(record))
        if key in seen:
            stats.exact += 1
            stats.pairs.append((uid_of(record), seen[key]))
            continue
        seen[key] = uid_of(record)
        unique.append(record)
    if near_threshold >= 1.0 or len(unique) < 2:
        return unique, stats

    if num_perm % bands:
        raise ValueError(f"num_perm ({num_perm}) must be a multiple of bands ({bands})")
    rows = num_perm // bands
    hasher = MinHasher(num_perm, shingle)
    buckets: dict[tuple[int, bytes], list[int]] = {}
    signatures: list[np.ndarray | None] = []
    kept: list[T] = []
    for record in unique:
        text = text_of(record)
        signature = hasher.signature(text) if len(norm_key(text)) >= min_chars_near else None
        duplicate_of = None
        if signature is not None:
            candidates: set[int] = set()
            for band in range(bands):
                candidates.update(buckets.get((band, signature[band * rows : (band + 1) * rows].tobytes()), ()))
            for index in sorted(candidates):
                other = signatures[index]
                if other is not None and float(np.mean(other == signature)) >= near_threshold:
                    duplicate_of = index
                    break
        if duplicate_of is not None:
            stats.near += 1
            stats.pairs.append((uid_of(record), uid_of(kept[duplicate_of])))
            continue
        index = len(kept)
        kept.append(record)
        signatures.append(signature)
        if signature is not None:
            for band in range(bands):
                buckets.setdefault((band, signature[band * rows : (band + 1) * rows].tobytes()), []).append(index)
    return kept, stats
