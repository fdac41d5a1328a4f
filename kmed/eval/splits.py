"""The one split of the outside-written consultation set into dev and a locked test part.

    python -m kmed.eval.splits /tmp/writers/eval_*.jsonl     # done once; writes data/eval/consult_{dev,test}.jsonl

Each case goes to ``test`` when its id's seeded hash falls in the lowest third of all hashes, so
the split depends only on the ids and the seed, never on the cases' content or on results.
``tests/eval/test_splits.py`` checks the committed files against this function.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

SEED = "kmed-consult-v1"
TEST_FRACTION = 1 / 3


def split_key(case_id: str, seed: str = SEED) -> str:
    return hashlib.sha256(f"{seed}:{case_id}".encode()).hexdigest()


def split_ids(ids: list[str], seed: str = SEED, test_fraction: float = TEST_FRACTION) -> tuple[set[str], set[str]]:
    """(dev ids, test ids)."""
    ordered = sorted(ids, key=lambda i: split_key(i, seed))
    cut = round(len(ordered) * test_fraction)
    return set(ordered[cut:]), set(ordered[:cut])


def main(paths: list[str]) -> None:
    from kmed.eval.grounded_eval import SETS

    cases = [json.loads(line) for p in paths for line in Path(p).read_text(encoding="utf-8").splitlines() if line.strip()]
    dev, test = split_ids([c["id"] for c in cases])
    for name, ids in (("dev", dev), ("test", test)):
        with open(SETS[name], "w", encoding="utf-8") as handle:
            for case in cases:
                if case["id"] in ids:
                    handle.write(json.dumps(case, ensure_ascii=False) + "\n")
        print(name, len(ids), SETS[name])


if __name__ == "__main__":
    main(sys.argv[1:])
