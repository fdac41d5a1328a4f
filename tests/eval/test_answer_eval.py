"""Answer-quality scores (kmed eval answers) and their paired comparison (kmed eval compare)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kmed.errors import KmedError
from kmed.eval.answer_eval import body_sentences, fluency, score_reply, summarize_answers
from kmed.eval.compare import compare, to_markdown
from kmed.llm.base import ContextPassage, GenerationRequest

PASSAGE = ContextPassage(1, "감기 · 개요", "감기는 바이러스가 코와 목에 염증을 일으키는 병이에요. 대개 일주일 안에 저절로 나아요.")


class _Reply:
    def __init__(self, answer):
        self.answer = answer


def test_fluency_counts_whole_haeyo_sentences_once():
    sentences = ["감기는 바이러스 질환이에요 [1].", "감기는 바이러스 질환이에요 [1].", "항생제가 필요", "대개 저절로 낫는다."]
    assert fluency(sentences) == 0.25  # a repeat, a cut clause and 해라체 do not count
    assert fluency([]) is None


def test_body_sentences_leave_out_headings_bullets_and_the_disclaimer():
    text = "■ 요약\n- 감기는 바이러스 질환이에요 [1]. 대개 저절로 나아요 [1].\n※ 이 답변은 일반적인 건강 정보예요."
    assert body_sentences(text) == ["감기는 바이러스 질환이에요 [1].", "대개 저절로 나아요 [1]."]


def test_scores_of_a_model_answer():
    raw = ("■ 요약\n- 감기는 바이러스가 코와 목에 염증을 일으키는 병이에요 [1].\n"
           "- 달을 보면 감기가 씻은 듯이 나아요 [1].\n- 대개 일주일 안에 저절로 나아요 [9].")
    request = GenerationRequest("감기가 뭐예요?", [PASSAGE])
    scores = score_reply(raw, request, _Reply("감기는 바이러스가 코와 목에 염증을 일으키는 병이에요 [1]."),
                         "감기는 바이러스가 코와 목에 염증을 일으켜요. 발열이 생길 수 있어요.")
    assert scores["faithfulness"] == pytest.approx(1 / 3)  # the invented sentence and the one citing [9] fail
    assert scores["citation_validity"] == pytest.approx(2 / 3)  # [9] names no passage given
    assert scores["citation_coverage"] == 1.0
    assert scores["fluency"] == 1.0
    assert "바이러스" in scores["key_facts"] and 0 < scores["fact_recall"] < 1  # 발열 is not in the answer


def _run(folder: Path, rows: list[dict]) -> Path:
    folder.mkdir()
    (folder / "cases.jsonl").write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    return folder


def _row(i: int, recall: float, nothing: bool, seconds: float) -> dict:
    scores = {"fact_recall": recall, "faithfulness": 1.0, "citation_validity": None, "citation_coverage": 1.0, "fluency": 1.0}
    return {"id": f"q{i}", "kind": "answer_quality", "scores": scores, "nothing_found": nothing, "answer_s": seconds,
            "ttft_s": seconds, "written_sentences": 3}


def test_compare_pairs_answer_runs_and_refuses_mixed_kinds(tmp_path):
    a = _run(tmp_path / "a", [_row(i, 0.5, False, 0.01) for i in range(10)])
    b = _run(tmp_path / "b", [_row(i, 0.8 if i < 9 else 0.2, i == 0, 2.0) for i in range(10)])
    report = compare(a, b)
    recall = report["metrics"]["fact_recall"]
    assert recall["a"] == 0.5 and recall["b"] == pytest.approx(0.74) and (recall["only_a"], recall["only_b"]) == (1, 9)
    assert recall["p_value"] == pytest.approx(0.0215, abs=1e-3)  # sign test: 1 of 10 discordant the other way
    assert "citation_validity" not in report["metrics"]  # never scored: nothing to pair
    assert report["metrics"]["nothing_found"]["only_b"] == 1
    assert report["metrics"]["answer_s"]["difference"] == pytest.approx(1.99)
    assert "sign-test p" in to_markdown(report)
    grounded = _run(tmp_path / "g", [{"id": f"q{i}", "passed": True, "expected": {}, "got": {"triage": "info"}} for i in range(10)])
    with pytest.raises(KmedError, match="비교할 수 없어요"):
        compare(a, grounded)


def test_summary_means_skip_unscored_questions():
    rows = [_row(0, 0.5, False, 1.0), _row(1, 1.0, True, 3.0)]
    rows[1]["scores"]["fact_recall"] = None
    summary = summarize_answers(rows)
    assert summary["fact_recall"] == 0.5 and summary["scored"]["fact_recall"] == 1
    assert summary["nothing_found_rate"] == 0.5 and summary["answer_s"] == {"p50": 2.0, "p95": 3.0, "n": 2}
