"""The output guard: every cited claim is a whole sentence its passage supports (kmed.agent.output_guard)."""

from __future__ import annotations

import pytest

from kmed.agent.output_guard import claims_of, verify_answer
from kmed.llm.base import ContextPassage

PASSAGE = "감기는 바이러스 질환이라 항생제가 필요 없어요. 물을 충분히 마시고 푹 쉬어요."
CONTEXT = [ContextPassage(1, "감기 · 치료", PASSAGE, "KDCA", "cond.common_cold#treatment#0", {})]


def test_a_fragment_that_drops_a_negation_is_rejected():
    answer, stats = verify_answer("■ 요약\n- 감기는 바이러스 질환이라 항생제가 필요 [1]", CONTEXT)
    assert "항생제가 필요" not in answer
    assert stats["dropped"] == 1 and stats["supported"] == 0 and stats["fragments"] == 1


def test_a_whole_quoted_sentence_is_kept_with_its_citation():
    answer, stats = verify_answer("■ 요약\n- 감기는 바이러스 질환이라 항생제가 필요 없어요. [1]", CONTEXT)
    assert answer == "■ 요약\n- 감기는 바이러스 질환이라 항생제가 필요 없어요. [1]"
    assert stats == {"medical_sentences": 1, "supported": 1, "dropped": 0, "fragments": 0, "repeated": 0, "cited_numbers": [1]}


@pytest.mark.parametrize(
    "text, kept",
    [
        ("감기는 바이러스 질환이라 항생제가 필요 없어요 [1].", True),  # a model puts the period after the marker
        ("감기에는 항생제가 필요 없고 물을 충분히 마셔요. [1]", True),  # a paraphrase the passage supports
        ("감기에는 항생제를 꼭 먹어야 빨리 나아요. [1]", False),  # not in the passage
        ("감기는 바이러스 질환이라 항생제가 필요 없어요. [2]", False),  # no such passage
        ("감기는 바이러스 질환이라 항생제가 [1]", False),  # not a whole sentence
    ],
)
def test_model_text_needs_whole_supported_sentences(text, kept):
    answer, stats = verify_answer(text, CONTEXT, strict=True)
    assert bool(answer) is kept, (answer, stats)


def test_a_quoted_sentence_must_be_a_sentence_of_its_passage_not_a_paraphrase():
    answer, _ = verify_answer("- 감기에는 항생제가 필요 없고 물을 충분히 마셔요. [1]", CONTEXT, strict=False)
    assert answer == ""


def test_uncited_small_talk_stays_and_empty_headings_go():
    answer, _ = verify_answer("■ 요약\n- 열이 나면 꼭 병원에 가야 해요.\n■ 참고\n좋은 하루 보내세요.", CONTEXT)
    assert answer == "■ 참고\n좋은 하루 보내세요."


def test_claims_are_cut_at_citation_markers():
    assert claims_of("열이 나요. 물을 마셔요 [1]. 쉬어요 [2][3] 괜찮아요") == ["열이 나요. 물을 마셔요 [1].", "쉬어요 [2][3]", "괜찮아요"]


def test_a_sentence_said_again_word_for_word_is_dropped_once_kept():
    looping = ("- 감기는 바이러스 질환이라 항생제가 필요 없어요. [1] 물을 충분히 마시고 푹 쉬어요. [1]\n"
               "- 감기는 바이러스 질환이라 항생제가 필요 없어요. [1]\n- 물을 충분히 마시고  푹 쉬어요. [1]")
    answer, stats = verify_answer(looping, CONTEXT, strict=True)
    assert answer == "- 감기는 바이러스 질환이라 항생제가 필요 없어요. [1] 물을 충분히 마시고 푹 쉬어요. [1]"
    assert stats["repeated"] == 2 and stats["supported"] == 2
    # A copy is judged against what was kept: an unsupported first try does not block a supported one.
    answer, stats = verify_answer("- 물을 충분히 마시고 푹 쉬어요. [2]\n- 물을 충분히 마시고 푹 쉬어요. [1]", CONTEXT, strict=True)
    assert answer == "- 물을 충분히 마시고 푹 쉬어요. [1]" and stats["repeated"] == 0
