"""Deterministic train/validation/test splits, by a hash of each record's stable id, stratified.

AI Hub's own Training and Validation stay distinct: by default every AI Hub Validation record is
our ``test`` and never meets training; our ``train``/``validation`` come from AI Hub Training. A
dataset without an AI Hub Validation part gets its test set carved from Training instead.

Within a stratum (dataset, domain, AI Hub split) records are ordered by ``blake2b(salt + uid)``
and the first ``round(n * test)`` go to test, the next ``round(n * validation)`` to validation.
Every domain is thus represented in proportion, the same input always gives the same split, and
new data moves only records near a boundary.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence

from kmed.data.aihub.records import Record

AIHUB_VALIDATION_MODES = ("test", "validation", "split")


def stable_hash(text: str, salt: str = "") -> int:
    return int.from_bytes(hashlib.blake2b((salt + text).encode("utf-8"), digest_size=8).digest(), "big")


def _cut(records: list[Record], fractions: dict[str, float], salt: str) -> None:
    ordered = sorted(records, key=lambda r: (stable_hash(r.uid, salt), r.uid))
    start = 0
    for name in ("test", "validation"):
        count = round(len(ordered) * fractions.get(name, 0.0))
        for record in ordered[start : start + count]:
            record.split = name
        start += count
    for record in ordered[start:]:
        record.split = "train"


def assign_splits(
    records: Sequence[Record],
    validation: float = 0.05,
    test: float = 0.05,
    aihub_validation_as: str = "test",
    salt: str = "kmed-aihub-split-v1",
) -> dict[str, dict[str, int]]:
    """Set ``record.split`` on every record; return counts per dataset and split."""
    if aihub_validation_as not in AIHUB_VALIDATION_MODES:
        raise ValueError(f"aihub_validation_as must be one of {AIHUB_VALIDATION_MODES}, got {aihub_validation_as!r}")
    if validation < 0 or test < 0 or validation + test >= 1:
        raise ValueError(f"validation ({validation}) + test ({test}) must be in [0, 1)")
    has_aihub_validation = {r.prov.dataset for r in records if r.prov.aihub_split == "Validation"}
    strata: dict[tuple[str, str, str], list[Record]] = defaultdict(list)
    for record in records:
        held = record.prov.aihub_split == "Validation"
        strata[(record.prov.dataset, record.domain, "held" if held else "pool")].append(record)

    for (dataset, _, pool), members in sorted(strata.items()):
        if pool == "held":
            if aihub_validation_as == "split":
                _cut(members, {"test": 0.5, "validation": 0.5}, salt)
            else:
                for record in members:
                    record.split = aihub_validation_as
        elif dataset not in has_aihub_validation:
            _cut(members, {"validation": validation, "test": test}, salt)
        elif aihub_validation_as == "test":
            _cut(members, {"validation": validation}, salt)
        elif aihub_validation_as == "validation":
            _cut(members, {"test": test}, salt)
        else:
            for record in members:
                record.split = "train"

    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for record in records:
        counts[record.prov.dataset][record.split] += 1
    return {k: dict(v) for k, v in counts.items()}
