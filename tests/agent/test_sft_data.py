"""Grounded SFT data made by the consultation (kmed train make-sft): real turns, guarded targets, topic split."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kmed.agent import sft_data as S
from kmed.errors import ConfigError, KmedError
from kmed.llm.prompts import cited_numbers
from kmed.llm.training.data import UNANSWERABLE, validate_record
from kmed.retrieval.config import DenseConfig, RetrievalConfig

MINI = Path(__file__).parents[1] / "fixtures" / "kb_mini"
QUESTIONS = [
    {"topic": "cond.gerd", "text": "역류성식도염 있으면 집에서 어떻게 관리해요?", "aspect": "self_care", "register": "존댓말", "writer": "t"},
    {"topic": "drug.acetaminophen", "text": "타이레놀 하루에 몇 알까지 먹어도 돼?", "aspect": "dosage", "register": "반말", "writer": "t"},
    {"topic": "cond.gerd", "text": "역류성 식도염 증상 뭐예요", "aspect": "symptoms", "register": "search_style", "writer": "t"},
    {"topic": "drug.clopidogrel", "text": "피 묽게 하는 클로피도그렐은 어떤 약이에요?", "aspect": "what", "register": "존댓말", "writer": "t"},
    {"topic": "drug.esomeprazole", "text": "에스오메프라졸 부작용 있어요?", "aspect": "side_effects", "register": "존댓말", "writer": "t"},
]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    from kmed import Assistant

    assistant = Assistant.load(kb_dir=MINI, index_dir=tmp_path_factory.mktemp("idx") / "default",
                               config=RetrievalConfig(dense=DenseConfig(train_steps=40)), generator=S.recording_composer())
    return assistant, S.build_sft(assistant, questions=QUESTIONS)


def test_grounded_targets_are_guarded_quotes_of_the_turns_own_passages(built):
    _, result = built
    records = result["splits"]["train"] + result["splits"]["test"]
    grounded = [r for r in records if r["provenance"]["kind"] == "grounded"]
    assert len(grounded) >= 3
    for record in grounded:
        assert not validate_record(record)
        given = {c["number"] for c in record["context"]}
        assert set(cited_numbers(record["answer"])) <= given and cited_numbers(record["answer"])
        texts = " ".join(c["text"] for c in record["context"])
        for line in record["answer"].splitlines():
            if line.startswith("- "):
                quote = line[2:].rsplit(" [", 1)[0]
                assert quote in texts, quote  # every sentence is a whole sentence of a given passage
        assert len([line for line in record["answer"].splitlines() if line.startswith("- ")]) <= S.TARGET_SENTENCES


def test_every_record_carries_as_many_passages_as_a_model_reads(built):
    """A record's prompt is the prompt the model will get: MODEL_CONTEXT_PASSAGES numbered passages at most."""
    from kmed.llm.base import MODEL_CONTEXT_PASSAGES

    _, result = built
    records = result["splits"]["train"] + result["splits"]["test"]
    sizes = {len(r["context"]) for r in records}
    assert max(sizes) == MODEL_CONTEXT_PASSAGES < 6


def test_the_other_shapes_come_from_the_policy(built):
    _, result = built
    records = result["splits"]["train"] + result["splits"]["test"]
    kinds = {r["provenance"]["kind"] for r in records}
    assert {"emergency", "refusal"} <= kinds
    for record in records:
        if record["provenance"]["kind"] == "emergency":
            assert "119" in record["answer"]
        if record["provenance"]["kind"] == "unanswerable":
            assert record["answer"] == UNANSWERABLE
    assert sum(result["outcomes"].get(k, 0) for k in ("grounded", "nothing_found")) + sum(
        v for k, v in result["outcomes"].items() if k.startswith("policy:")) == len(QUESTIONS)


def test_split_is_by_topic_and_stable(built):
    _, result = built
    topics = {name: {r["provenance"].get("topic") for r in records} - {None} for name, records in result["splits"].items()}
    assert not topics["train"] & topics["test"]
    assert S.is_test("cond.gerd") == S.is_test("cond.gerd")
    shares = [S.is_test(f"cond.t{i}") for i in range(2000)]
    assert 0.07 < sum(shares) / len(shares) < 0.13  # TEST_SHARE = 0.1


def test_write_is_atomic_and_reports_counts(built, tmp_path):
    _, result = built
    manifest = S.write_sft(result, tmp_path / "sft", {"seed": 0})
    assert manifest["records"]["train"] == len(result["splits"]["train"])
    lines = (tmp_path / "sft" / "train.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == manifest["records"]["train"] and json.loads(lines[0])["task"] == "grounded_qa"
    assert not list(tmp_path.glob(".sft.tmp-*"))


def test_build_needs_the_recording_composer_and_readable_questions(built, tmp_path):
    from kmed.llm.extractive import ExtractiveGenerator

    assistant, _ = built
    plain = assistant.generator
    assistant.generator = ExtractiveGenerator()
    try:
        with pytest.raises(ConfigError, match="recording_composer"):
            S.build_sft(assistant, questions=QUESTIONS[:1])
    finally:
        assistant.generator = plain
    with pytest.raises(ConfigError, match="questions_"):
        S.read_questions(tmp_path)
    (tmp_path / "questions_x.jsonl").write_text('{"text": "주제가 없어요"}\n', encoding="utf-8")
    with pytest.raises(KmedError, match="questions_x.jsonl:1"):
        S.read_questions(tmp_path)


def test_shipped_questions_cover_every_kb_topic_three_times_per_writer():
    from collections import Counter

    from kmed.data.kb import load_kb

    rows = S.read_questions()
    kb, _ = load_kb()
    topics = Counter(r["topic"] for r in rows)
    assert set(topics) <= set(kb.conditions) | set(kb.drugs)
    assert len({r["writer"] for r in rows}) == 3 and len({r["text"] for r in rows}) == len(rows)
    assert all(count == 3 for count in topics.values())


@pytest.fixture(scope="module")
def prepared_aihub(tmp_path_factory):
    """The AI Hub fixture download through ``kmed data prepare`` (no linking: the mix is what matters)."""
    import importlib.util

    from kmed.data.aihub.config import PipelineConfig
    from kmed.data.aihub.pipeline import prepare

    spec = importlib.util.spec_from_file_location("aihub_build", Path(__file__).parents[1] / "fixtures" / "aihub" / "build.py")
    fx = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fx)
    base = tmp_path_factory.mktemp("aihub-sft")
    prepare(fx.build(base / "aihub", "zipped"), base / "processed", PipelineConfig(), link=False)
    return base / "processed"


def test_aihub_mix_joins_the_medical_bucket_in_the_briefs_proportions(built, prepared_aihub, tmp_path):
    from kmed.data.aihub.config import PipelineConfig
    from kmed.llm.training.data import read_records, write_records

    _, result = built
    ours = result["splits"]["train"]
    mixed, report = S.mix_prepared_aihub(ours, prepared_aihub)
    assert report["available"]["medical"] > 0 and report["taken"]["medical"] == len(ours) + report["available"]["medical"]
    ratios = PipelineConfig().mix.buckets
    want = round(ratios["base_validation"].ratio / ratios["medical"].ratio * report["taken"]["medical"])
    assert report["taken"]["base_validation"] == min(want, report["available"]["base_validation"])
    assert (report["taken"]["base_validation"] < want) == any("base_validation" in n for n in report["notes"])
    assert report["not_lora"].get("compression", 0) > 0 and "compression" not in report["taken"]  # distillation data
    assert len(mixed) == sum(report["taken"].values())
    assert {r["id"] for r in ours} <= {r["id"] for r in mixed}
    assert all(not validate_record(r) for r in mixed)
    write_records(mixed, tmp_path / "train.jsonl")
    assert len(read_records(tmp_path / "train.jsonl")) == len(mixed)  # kmed train lora reads every record
    assert S.mix_prepared_aihub(ours, prepared_aihub)[0] == mixed  # stable


def test_make_sft_refuses_an_aihub_folder_without_a_mix(tmp_path):
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "kmed.cli.main", "--no-record", "train", "make-sft", "--out",
                           str(tmp_path / "x"), "--aihub", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "kmed data prepare" in done.stdout + done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "x").exists()
