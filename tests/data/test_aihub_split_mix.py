"""Deterministic stratified splits that keep AI Hub's Validation apart, and the 20/30/50 mix."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from kmed.data.aihub.config import BucketConfig, MixConfig
from kmed.data.aihub.mix import build_mix, mix_sizes, to_example
from kmed.data.aihub.records import QA, Dialogue, Exercise, Provenance
from kmed.data.aihub.split import assign_splits
from kmed.errors import ConfigError


def _qa(dataset: str, i: int, domain: str = "17", aihub_split: str = "Training", **kw) -> QA:
    return QA(
        uid=f"{dataset}:qa:{i}",
        prov=Provenance(dataset, aihub_split, f"{dataset}/{i}.json", str(i)),
        domain=domain,
        question=f"질문 {i}?",
        answer=kw.pop("answer", f"답 {i}"),
        q_type=kw.pop("q_type", "short"),
        **kw,
    )


def _splits(records):
    return {r.uid: r.split for r in records}


def test_splits_are_deterministic_whatever_the_input_order():
    records = [_qa("essential", i, domain=str(14 + i % 4)) for i in range(400)]
    assign_splits(records, validation=0.1, test=0.1)
    first = _splits(records)
    shuffled = [_qa("essential", i, domain=str(14 + i % 4)) for i in range(400)]
    random.Random(7).shuffle(shuffled)
    assign_splits(shuffled, validation=0.1, test=0.1)
    assert _splits(shuffled) == first
    assert set(first.values()) == {"train", "validation", "test"}


def test_splits_are_stratified_by_domain():
    records = [_qa("essential", i, domain="17") for i in range(300)] + [_qa("essential", 1000 + i, domain="16") for i in range(30)]
    assign_splits(records, validation=0.1, test=0.2)
    by_domain = Counter((r.domain, r.split) for r in records)
    assert (by_domain[("17", "validation")], by_domain[("17", "test")]) == (30, 60)
    assert (by_domain[("16", "validation")], by_domain[("16", "test")]) == (3, 6)


def test_aihub_validation_is_our_test_and_never_trains():
    training = [_qa("essential", i) for i in range(100)]
    held = [_qa("essential", 500 + i, aihub_split="Validation") for i in range(20)]
    other = [_qa("specialist", i) for i in range(100)]  # no AI Hub Validation: test carved from Training
    counts = assign_splits(training + held + other, validation=0.1, test=0.1)
    assert {r.split for r in held} == {"test"}
    assert Counter(r.split for r in training) == {"train": 90, "validation": 10}
    assert counts["specialist"] == {"train": 80, "validation": 10, "test": 10}
    assign_splits(held, aihub_validation_as="split")
    assert Counter(r.split for r in held) == {"validation": 10, "test": 10}
    with pytest.raises(ValueError):
        assign_splits(held, aihub_validation_as="train")


def test_new_data_moves_few_records():
    records = [_qa("essential", i) for i in range(1000)]
    assign_splits(records, validation=0.1, test=0.1)
    before = _splits(records)
    grown = [_qa("essential", i) for i in range(1100)]
    assign_splits(grown, validation=0.1, test=0.1)
    moved = sum(1 for r in grown if r.uid in before and before[r.uid] != r.split)
    assert moved <= 40  # only records near a boundary change side


def test_mix_sizes():
    ratios = {"base_validation": 0.2, "compression": 0.3, "medical": 0.5}
    assert mix_sizes({"base_validation": 100, "compression": 100, "medical": 100}, ratios) == {"base_validation": 40, "compression": 60, "medical": 100}
    assert mix_sizes({"base_validation": 10, "compression": 300, "medical": 300}, ratios) == {"base_validation": 10, "compression": 15, "medical": 25}
    # An empty bucket is left out and the others keep their relative weights (3:5).
    assert mix_sizes({"base_validation": 0, "compression": 300, "medical": 500}, ratios) == {"base_validation": 0, "compression": 300, "medical": 500}
    assert mix_sizes({"base_validation": 10, "compression": 300, "medical": 300}, ratios, max_repeat=2) == {"base_validation": 20, "compression": 30, "medical": 50}
    assert mix_sizes({"base_validation": 100, "compression": 100, "medical": 100}, ratios, max_total=10) == {"base_validation": 2, "compression": 3, "medical": 5}


def _corpus():
    records = [_qa("essential", i, domain=str(14 + i % 4)) for i in range(300)]
    records += [_qa("korean_passage", i, domain="고등학교 1학년", context=f"지문 {i}", q_type="passage_short") for i in range(100)]
    records += [
        Exercise(uid=f"math_solution:ex:{i}", prov=Provenance("math_solution", "Training", f"m/{i}.json", str(i)), domain="중학교 3학년",
                 problem=f"문제 {i}", solution=f"풀이 {i}", answer=str(i))
        for i in range(200)
    ]
    records += [
        Dialogue(uid=f"interview:dlg:{i}", prov=Provenance("interview", "Training", f"i/{i}.json", str(i)), turns=[("user", "질문"), ("assistant", f"답 {i}")])
        for i in range(20)
    ]
    assign_splits(records, validation=0.1, test=0.1)
    return records


def test_build_mix_hits_the_ratios_on_train_and_keeps_held_out_whole():
    records = _corpus()
    result = build_mix(records, MixConfig(), grounder=None)
    taken, available = result.taken, result.available
    assert available == {"base_validation": 96, "compression": 160, "medical": 236}
    assert taken == {"base_validation": 94, "compression": 142, "medical": 236}  # medical limits: total 472
    assert result.shares() == pytest.approx({"base_validation": 0.2, "compression": 0.3, "medical": 0.5}, abs=0.002)
    train_ids = {e["id"] for e in result.files["medical"]["train"]}
    assert all(r.split == "train" for r in records if r.uid in train_ids)
    held = Counter(r.split for r in records if r.prov.dataset == "essential")
    assert len(result.files["medical"]["test"]) == held["test"] and len(result.files["medical"]["validation"]) == held["validation"]
    tasks = {b: {e["task"] for e in result.files[b]["train"]} for b in result.files}
    assert tasks == {"base_validation": {"grounded_qa", "dialogue"}, "compression": {"distill_text"}, "medical": {"grounded_qa"}}
    again = build_mix(list(reversed(records)), MixConfig(), grounder=None)
    assert again.files == result.files


def test_example_shapes():
    passage_qa = _qa("korean_passage", 1, context="지문입니다.", options={"1": "가", "2": "나"}, answer_label="2", answer="나", q_type="passage_mcq")
    example = to_example(passage_qa, None)
    assert example["context"] == [{"number": 1, "title": "지문", "text": "지문입니다.", "source": "AI Hub 국어 교과 지문형 문제 · 1"}]
    assert example["question"] == "질문 1?\n1) 가\n2) 나" and example["answer"] == "2) 나 [1]"
    dialogue = Dialogue(uid="interview:dlg:1", prov=Provenance("interview", "Training", "f", "1"), turns=[("user", "안녕하세요"), ("assistant", "네")])
    assert to_example(dialogue, None)["messages"] == [{"role": "user", "content": "안녕하세요"}, {"role": "assistant", "content": "네"}]
    exercise = Exercise(uid="math_solution:ex:1", prov=Provenance("math_solution", "Training", "f", "1"), problem="$1+1$?", solution="더한다.", answer="2")
    assert to_example(exercise, None) == {
        "id": "math_solution:ex:1",
        "task": "distill_text",
        "text": "문제: $1+1$?\n풀이: 더한다.\n정답: 2",
        "provenance": {"dataset": "math_solution", "aihub_split": "Training", "file": "f", "id": "1", "split": "", "record_id": "math_solution:ex:1"},
    }


def test_mix_config_is_validated():
    with pytest.raises(ConfigError):
        MixConfig(buckets={"a": BucketConfig(0.5, ["essential"]), "b": BucketConfig(0.4, ["specialist"])})
    with pytest.raises(ConfigError):
        MixConfig(buckets={"a": BucketConfig(0.5, ["essential"]), "b": BucketConfig(0.5, ["essential"])})
    with pytest.raises(ConfigError):
        BucketConfig(1.0, ["no_such_dataset"])
