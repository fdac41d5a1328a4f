"""The training mix: records → task examples for ``kmed train lora`` / ``kmed compress``, by bucket.

Buckets and their share of the *train* split come from ``configs/data_mix.yaml`` (by default 20%
base-model validation, 30% compression, 50% medical). The bucket that runs out first sets the size:
``total = min(available_b * max_repeat / ratio_b)``, and each bucket takes ``ratio_b * total``
records in stable-hash order (repeating when ``max_repeat`` > 1). A bucket with no data is left out
and the others' ratios are renormalised (the report says so). Validation and test keep every record
of their bucket: they measure each ability on its own.

Task shapes (docs/data-pipeline.md):
- ``grounded_qa``: question, numbered context passages, answer with ``[n]`` citations;
- ``dialogue``: messages with user/assistant roles;
- ``distill_text``: one text (problem, solution steps, answer).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from kmed.data.aihub.choices import format_options
from kmed.data.aihub.config import MixConfig
from kmed.data.aihub.ingest import Grounder
from kmed.data.aihub.records import QA, SPLITS, Dialogue, Exercise, Record, dataset_title
from kmed.data.aihub.split import stable_hash


@dataclass
class MixResult:
    files: dict[str, dict[str, list[dict]]] = field(default_factory=dict)  # bucket → split → examples
    available: dict[str, int] = field(default_factory=dict)  # train records per bucket
    taken: dict[str, int] = field(default_factory=dict)  # train examples per bucket after mixing
    notes: list[str] = field(default_factory=list)

    def shares(self) -> dict[str, float]:
        total = sum(self.taken.values())
        return {k: round(v / total, 4) if total else 0.0 for k, v in self.taken.items()}


def _provenance(record: Record, **extra) -> dict:
    return {**record.prov.to_dict(), "split": record.split, "record_id": record.uid, **extra}


def _qa_question(qa: QA) -> str:
    return f"{qa.question}\n{format_options(qa.options)}" if qa.options else qa.question


def _qa_answer(qa: QA) -> str:
    if qa.options and qa.answer_label:
        return f"{qa.answer_label}) {qa.options[qa.answer_label]}"
    return qa.answer


def _qa_full_answer(qa: QA) -> str:
    return _qa_answer(qa) + (f"\n{qa.explanation}" if qa.explanation else "")


def to_example(record: Record, grounder: Grounder | None) -> dict | None:
    """One record as a task example; ``None`` for records that are not training examples (documents)."""
    if isinstance(record, Exercise):
        parts = [f"문제: {record.problem}"]
        if record.options:
            parts.append(f"보기:\n{format_options(record.options)}")
        parts += [f"풀이: {record.solution}", f"정답: {record.answer}"]
        return {"id": record.uid, "task": "distill_text", "text": "\n".join(parts), "provenance": _provenance(record)}
    if isinstance(record, Dialogue):
        messages = [{"role": role, "content": text} for role, text in record.turns]
        return {"id": record.uid, "task": "dialogue", "messages": messages, "provenance": _provenance(record, topic=record.topic)}
    if not isinstance(record, QA):
        return None
    question, answer = _qa_question(record), _qa_answer(record)
    if record.context:  # 국어 지문형: the passage is the one context, and the answer rests on it
        context = [{"number": 1, "title": "지문", "text": record.context, "source": f"AI Hub {dataset_title(record.prov.dataset)} · {record.prov.id}"}]
        full = f"{answer} [1]" + (f"\n{record.explanation}" if record.explanation else "")
        return {
            "id": record.uid,
            "task": "grounded_qa",
            "question": question,
            "context": context,
            "answer": full,
            "provenance": _provenance(record, grounded=True, q_type=record.q_type),
        }
    full = _qa_full_answer(record)
    grounded = grounder.ground(question, full) if grounder else None
    return {
        "id": record.uid,
        "task": "grounded_qa",
        "question": question,
        "context": grounded.context if grounded else [],
        "answer": grounded.answer if grounded else full,
        "provenance": _provenance(record, grounded=bool(grounded and grounded.grounded), q_type=record.q_type, domain=record.domain),
    }


def mix_sizes(available: dict[str, int], ratios: dict[str, float], max_repeat: float = 1.0, max_total: int | None = None) -> dict[str, int]:
    """How many train examples each bucket contributes (see the module docstring)."""
    live = {b: r for b, r in ratios.items() if r > 0 and available.get(b, 0) > 0}
    if not live:
        return {b: 0 for b in ratios}
    scale = sum(live.values())
    live = {b: r / scale for b, r in live.items()}
    total = min(available[b] * max_repeat / r for b, r in live.items())
    if max_total is not None:
        total = min(total, max_total)
    # total * ratio never exceeds what a bucket can give, so rounding stays within it.
    return {b: min(round(total * live[b]), math.floor(available[b] * max_repeat)) if b in live else 0 for b in ratios}


def _take(records: Sequence[Record], n: int, salt: str) -> list[tuple[Record, int]]:
    ordered = sorted(records, key=lambda r: (stable_hash(r.uid, salt), r.uid))
    return [(ordered[i % len(ordered)], i // len(ordered)) for i in range(n)] if ordered else []


def build_mix(records: Sequence[Record], config: MixConfig, grounder: Grounder | None, salt: str = "kmed-aihub-mix-v1") -> MixResult:
    result = MixResult()
    dataset_bucket = {d: b for b, bucket in config.buckets.items() for d in bucket.datasets}
    members: dict[str, dict[str, list[Record]]] = {b: {s: [] for s in SPLITS} for b in config.buckets}
    for record in records:
        bucket = dataset_bucket.get(record.prov.dataset)
        if bucket and isinstance(record, (QA, Dialogue, Exercise)) and record.split in SPLITS:
            members[bucket][record.split].append(record)
    result.available = {b: len(m["train"]) for b, m in members.items()}
    ratios = {b: c.ratio for b, c in config.buckets.items()}
    sizes = mix_sizes(result.available, ratios, config.max_repeat, config.max_train_records)
    for bucket, ratio in ratios.items():
        if ratio > 0 and not result.available[bucket]:
            wanted = ", ".join(dataset_title(d) for d in config.buckets[bucket].datasets)
            result.notes.append(f"'{bucket}' 묶음에 학습 데이터가 없어 비율 {ratio:.0%}를 다른 묶음에 나눴어요 (필요한 데이터: {wanted}).")
    chosen_by_bucket = {b: _take(m["train"], sizes[b], salt) for b, m in members.items()}
    if grounder is not None:  # one batched retrieval for every example that needs grounding
        needed = [r for b, m in members.items() for r in [*(c for c, _ in chosen_by_bucket[b]), *m["validation"], *m["test"]]]
        grounder.prefetch([(_qa_question(r), _qa_full_answer(r)) for r in needed if isinstance(r, QA) and not r.context])
    for bucket, by_split in members.items():
        result.files[bucket] = {}
        chosen = chosen_by_bucket[bucket]
        examples = []
        for record, repeat in chosen:
            example = to_example(record, grounder)
            if example is not None:
                if repeat:
                    example = {**example, "id": f"{example['id']}#r{repeat}"}
                examples.append(example)
        result.files[bucket]["train"] = examples
        result.taken[bucket] = len(examples)
        for split in ("validation", "test"):
            ordered = sorted(by_split[split], key=lambda r: r.uid)
            result.files[bucket][split] = [e for r in ordered if (e := to_example(r, grounder)) is not None]
    return result
