"""``kmed bench agent --model``: TTFT and answer time per generated turn, beside load and turn latency."""

from __future__ import annotations

import pytest

from kmed.eval.bench import bench_agent

TEXTS = ["감기는 콧물과 기침이 나요.", "열이 나면 물을 충분히 마셔요.", "속이 쓰리고 신물이 올라와요."] * 4


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from kmed.llm.tiny import SIMPLE_CHAT_TEMPLATE, save_tiny_model

    return save_tiny_model(tmp_path_factory.mktemp("agent-model") / "m", arch="llama", texts=TEXTS,
                           chat_template=SIMPLE_CHAT_TEMPLATE)


def test_a_model_run_reports_ttft_and_answer_time(tiny_model):
    turns = [["속이 쓰리고 신물이 올라와요"], ["감기에 걸려서 콧물이 나요"], ["119 불러야 하나요? 가슴이 찢어질 듯 아파요"]]
    report = bench_agent(turns, model=str(tiny_model), load_runs=1)
    assert report["model"] == str(tiny_model) and report["turn"]["n"] == 3
    assert report["load_seconds"]["runs"] and report["load_seconds"]["median"] > 0
    assert len(report["first_turn_seconds"]["runs"]) == 1 and report["first_turn_seconds"]["median"] > 0
    assert 1 <= report["ttft_s"]["n"] <= 3  # an emergency reply never reaches the generator
    assert 0 < report["ttft_s"]["p50"] <= report["answer_s"]["p50"]
    # Each answer's length, and its time scaled to the 120 tokens the response-time goal names.
    assert report["answer_tokens"]["n"] == report["ttft_s"]["n"] and report["answer_tokens"]["p50"] > 1
    assert report["answer_120_s"]["p50"] >= report["ttft_s"]["p50"]


def test_the_default_composer_has_no_generation_timings():
    report = bench_agent([["두통이 있어요"]], load_runs=0)
    assert report["model"] == "extractive" and "ttft_s" not in report and report["load_seconds"]["median"] is None
    assert report["first_turn_seconds"] == {"runs": [], "median": None}
