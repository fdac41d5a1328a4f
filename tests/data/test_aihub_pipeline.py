"""``kmed data prepare`` end to end on the fixture: outputs, formats, idempotence, CLI, Assistant.search."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from aihub_fixture import fx
from typer.testing import CliRunner

from kmed.data.aihub.config import PipelineConfig
from kmed.data.aihub.ingest import cooccurrence_edges
from kmed.data.aihub.pipeline import prepare
from kmed.data.passages import Passage, read_jsonl

TERMS = {"역류성 식도염": "cond.gerd", "속쓰림": "sym.heartburn", "양성자펌프억제제": "drug.ppi", "흉통": "sym.chest_pain", "식은땀": "sym.cold_sweat"}


def fake_linker(text: str) -> list[str]:
    return [entity for term, entity in TERMS.items() if term in text]


def _config() -> PipelineConfig:
    config = PipelineConfig()
    config.kg.min_count = 1
    return config


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    base = tmp_path_factory.mktemp("pipeline")
    download = fx.build(base / "aihub", "zipped")
    out = base / "processed"
    (out / "kg_edges").mkdir(parents=True)
    (out / "kg_edges" / "dur.jsonl").write_text('{"src": "a", "dst": "b"}\n', encoding="utf-8")  # someone else's edges
    result = prepare(download, out, _config(), linker=fake_linker)
    return download, out, result


def test_outputs_and_report(prepared):
    _, out, result = prepared
    assert not result.unchanged
    for name in ["passages.jsonl", "kg_edges/aihub_cooccurrence.jsonl", "eval/medical_mcq.jsonl", "eval/medical_open.jsonl", "report.json", "manifest.json", "skipped.jsonl"]:
        assert (out / name).exists(), name
    for bucket in ("base_validation", "compression", "medical"):
        for split in ("train", "validation", "test"):
            assert (out / "mix" / bucket / f"{split}.jsonl").exists()
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["found"]["essential"] == 21
    assert report["skipped"]["bad_json"]["count"] == 1
    assert report["deduplicated"] == {"exact": 1, "near": 1}
    assert report["pii_redacted"] == {"email": 2, "phone": 2}
    assert report["per_split"]["essential"]["test"] == 3  # AI Hub Validation (VL_) is our test
    assert {s["reason"] for s in _jsonl(out / "skipped.jsonl")} >= {"bad_json", "missing_field", "no_solution", "no_answer_in_folder"}
    assert (out / "kg_edges" / "dur.jsonl").exists()  # other areas' files are left alone
    assert not [p for p in out.iterdir() if p.name.startswith((".staging", ".old"))]


def test_passages_have_the_agreed_metadata(prepared):
    _, out, _ = prepared
    passages = list(read_jsonl(out / "passages.jsonl"))
    assert all(isinstance(p, Passage) for p in passages)
    by_id = {p.id: p for p in passages}
    textbook = by_id["aihub:essential:doc:5001#0"]
    meta = textbook.metadata
    assert meta["entity_type"] == "aihub" and meta["dataset"] == "essential" and meta["lang"] == "ko"
    assert meta["source"] == "AI Hub 필수의료 의학지식 · 내과학 교과서 소화기편 (2021)"
    assert meta["origin"].endswith("TS_국문_의학_교과서.zip/5001.json")
    assert (meta["domain"], meta["department"]) == ("17", "내과")
    assert meta["entity_ids"] == ["cond.gerd", "sym.heartburn", "drug.ppi"]
    assert by_id["aihub:essential:doc:5003#0"].metadata["lang"] == "en"
    assert "aihub:healthcare_qa:answer:HC-A-00000001#0" in by_id
    qa_passages = {p.metadata["record_id"] for p in passages if p.metadata["kind"] == "qa"}
    assert "essential:qa:102" in qa_passages
    assert not qa_passages & {"essential:qa:301", "essential:qa:302", "essential:qa:303"}  # eval answers stay out


def test_no_pii_in_any_output(prepared):
    _, out, _ = prepared
    for path in out.rglob("*.jsonl"):
        text = path.read_text(encoding="utf-8")
        assert "010-1234-5678" not in text and "clinic@example.com" not in text, path


def test_kg_cooccurrence_edges(prepared):
    _, out, _ = prepared
    edges = _jsonl(out / "kg_edges" / "aihub_cooccurrence.jsonl")
    assert edges
    for edge in edges:
        assert edge["src"] < edge["dst"] and edge["type"] == "co_occurs"
        assert 0 < edge["weight"] <= 1
        assert edge["provenance"]["source"] == "aihub" and 1 <= len(edge["provenance"]["examples"]) <= 3
    gerd = [e for e in edges if (e["src"], e["dst"]) == ("cond.gerd", "sym.heartburn") and e["provenance"]["dataset"] == "essential"]
    assert gerd and gerd[0]["provenance"]["count"] >= 2


def test_cooccurrence_weights_and_threshold():
    def passage(i, ids):
        return Passage(f"p{i}", "", "", {"entity_ids": ids, "dataset": "d", "record_id": f"r{i}"})

    passages = [passage(0, ["a", "b"]), passage(1, ["a", "b"]), passage(2, ["a", "c"]), passage(3, ["a"])]
    edges = cooccurrence_edges(passages, min_count=2)
    assert [(e["src"], e["dst"]) for e in edges] == [("a", "b")]
    assert edges[0]["weight"] == pytest.approx(2 / (4 * 2) ** 0.5, abs=1e-4)
    assert edges[0]["provenance"] == {"source": "aihub", "dataset": "d", "count": 2, "examples": ["r0", "r1"]}


def test_grounded_sft_examples_cite_their_context(prepared):
    _, out, _ = prepared
    medical = [e for split in ("train", "validation", "test") for e in _jsonl(out / "mix" / "medical" / f"{split}.jsonl")]
    assert medical and all(e["task"] == "grounded_qa" for e in medical)
    grounded = [e for e in medical if e["provenance"]["grounded"]]
    assert grounded
    for example in grounded:
        numbers = {c["number"] for c in example["context"]}
        cited = {int(n) for n in re.findall(r"\[(\d+)\]", example["answer"])}
        assert cited and cited <= numbers
        assert all({"number", "title", "text", "source"} <= set(c) for c in example["context"])
    ppi = next(e for e in medical if e["id"] == "essential:qa:301")  # test split: always written whole
    assert ppi["question"].endswith("5) 공복과 무관") and ppi["answer"].startswith("2) 아침 식사 30분 전")
    compression = _jsonl(out / "mix" / "compression" / "train.jsonl")
    assert compression and all(e["task"] == "distill_text" and "풀이:" in e["text"] for e in compression)


def test_eval_sets(prepared):
    _, out, _ = prepared
    mcq = _jsonl(out / "eval" / "medical_mcq.jsonl")
    assert [m["id"] for m in mcq] == ["essential:qa:301"]
    assert mcq[0]["options"]["2"] == "아침 식사 30분 전" and mcq[0]["answer"] == "2" and list(mcq[0]["options"]) == ["1", "2", "3", "4", "5"]
    open_items = {o["id"]: o for o in _jsonl(out / "eval" / "medical_open.jsonl")}
    assert set(open_items) == {"essential:qa:302", "essential:qa:303"}
    assert open_items["essential:qa:303"]["key_facts"] == ["AED"] and open_items["essential:qa:303"]["q_type"] == "short"
    assert "바렛 식도" in open_items["essential:qa:302"]["key_facts"]


def test_second_run_does_nothing_and_changes_are_noticed(prepared):
    download, out, _ = prepared
    stamp = (out / "passages.jsonl").stat().st_mtime_ns
    again = prepare(download, out, _config(), linker=fake_linker)
    assert again.unchanged and (out / "passages.jsonl").stat().st_mtime_ns == stamp
    changed = _config()
    changed.passages.max_chars = 300
    assert not prepare(download, out, changed, linker=fake_linker).unchanged
    assert not prepare(download, out, changed, link=False).unchanged  # linking is part of the fingerprint
    target = next(download.rglob("TL_응급의학과.zip"))
    os.utime(target, ns=(target.stat().st_atime_ns, target.stat().st_mtime_ns + 10**9))
    assert not prepare(download, out, changed, link=False).unchanged
    assert prepare(download, out, changed, link=False).unchanged


def test_cli_prepare_prints_the_report(tmp_path):
    from kmed.cli.main import app

    download = fx.build(tmp_path / "aihub", "messy")
    runner = CliRunner()
    args = ["data", "prepare", "--aihub-dir", str(download), "--out", str(tmp_path / "out"), "--no-link"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "건너뛴 항목" in first.output and "JSON 형식이 깨졌어요" in first.output and "필수의료 의학지식" in first.output
    assert (tmp_path / "out" / "prepare.log").read_text(encoding="utf-8").count("WARNING") >= 4
    second = runner.invoke(app, args)
    assert second.exit_code == 0 and "바뀌지 않아" in second.output
    as_json = runner.invoke(app, [*args, "--force", "--json"])
    assert json.loads(as_json.output)["found"]["essential"] == 21


def test_cli_reports_a_missing_folder(tmp_path):
    from kmed.cli.main import app
    from kmed.errors import KmedError

    result = CliRunner().invoke(app, ["data", "prepare", "--aihub-dir", str(tmp_path / "nope"), "--out", str(tmp_path / "out")])
    assert result.exit_code != 0 and isinstance(result.exception, KmedError)
    assert "찾을 수 없어요" in result.exception.message


TINY_KB = Path(__file__).parents[1] / "fixtures" / "aihub" / "tiny_kb"  # four entries: builds an index in seconds


def test_essential_fixture_reaches_assistant_search(tmp_path, monkeypatch):
    """필수의료 layout → prepare → index with processed passages → Assistant.search finds them.

    A four-entry KB keeps the index build to seconds and away from concurrent edits of data/kb."""
    try:
        from kmed import Assistant
        from kmed.retrieval.config import DenseConfig, RetrievalConfig
        from kmed.retrieval.index import build_index
    except ImportError as exc:
        pytest.skip(f"kmed.Assistant is not available yet ({exc}); the lead's agent provides it")
    from kmed.data.kb import load_kb_or_fail

    kb_dir = TINY_KB
    kb = load_kb_or_fail(kb_dir)
    root = fx.copy_fixture(tmp_path / "aihub")
    processed = tmp_path / "processed"
    prepare(root / "09.필수의료 의학지식 데이터", processed, _config(), link=False)
    monkeypatch.setenv("KMED_PROCESSED_DIR", str(processed))
    index_dir = tmp_path / "index"
    config = RetrievalConfig(dense=DenseConfig(enabled=False))  # BM25 + KG keep this test fast
    build_index(kb, index_dir, config, with_processed=True)
    assistant = Assistant.load(kb_dir=kb_dir, index_dir=index_dir, config=config, auto_build=False)
    hits = assistant.search("양성자펌프억제제는 아침 식사 전에 복용하나요", k=5)
    aihub = [h for h in hits if h.metadata.get("entity_type") == "aihub"]
    assert aihub, [h.id for h in hits]
    assert aihub[0].id.startswith("aihub:essential:doc:5001#"), [(h.id, h.score) for h in hits]
    assert aihub[0].metadata["source"].startswith("AI Hub 필수의료 의학지식")
    assert "아침 식사 30분 전" in aihub[0].text
    chest = assistant.search("흉통이 20분 이상 지속되고 식은땀", k=5)
    assert any(h.id.startswith("aihub:essential:doc:5002#") for h in chest), [h.id for h in chest]


def test_grounded_qa_files_pass_the_lora_trainers_check(prepared):
    """The LLM pipeline's reader accepts every grounded_qa example we write (the agreed format)."""
    try:
        from kmed.llm.training.data import validate_record
    except ImportError as exc:
        pytest.skip(f"kmed.llm.training is not available ({exc})")
    _, out, _ = prepared
    examples = [e for path in sorted((out / "mix").rglob("*.jsonl")) for e in _jsonl(path) if e["task"] == "grounded_qa"]
    assert len(examples) > 5
    problems = {e["id"]: validate_record(e) for e in examples}
    assert not {k: v for k, v in problems.items() if v}


def _without_paths(value):
    if isinstance(value, dict):
        return {k: _without_paths(v) for k, v in value.items() if k not in ("file", "origin")}
    if isinstance(value, list):
        return [_without_paths(v) for v in value]
    return value


def test_zipped_and_extracted_downloads_give_identical_outputs(tmp_path):
    outputs = {}
    for variant in ("extracted", "messy"):
        out = tmp_path / f"out-{variant}"
        prepare(fx.build(tmp_path / variant, variant), out, _config(), linker=fake_linker)
        outputs[variant] = {
            str(path.relative_to(out)): _without_paths(_jsonl(path))
            for path in sorted(out.rglob("*.jsonl"))
            if path.name != "skipped.jsonl"
        }
    assert outputs["extracted"] == outputs["messy"]
