"""The output guard (kmed.agent.output_guard.verify_answer and claims_of), case by case.

Two modes: ``strict=False`` is the extractive composer (every cited claim must be exactly one
sentence of the passage it cites), ``strict=True`` is model-written text (every claim needs a
citation, and a whole sentence whose words overlap the cited passage). Passages are built here
as ``ContextPassage`` objects, the form ``kmed.agent.answer`` hands the guard.
"""

from __future__ import annotations

import pytest

from kmed.agent.output_guard import claims_of, verify_answer
from kmed.llm.base import ContextPassage
from kmed.text_ko import sentence_ends, split_sentences

FEVER = "열이 38도 이상이면 해열제를 먹을 수 있어요. 사흘 넘게 열이 나면 병원에 가야 해요."
COLD = "감기는 바이러스 질환이라 항생제가 필요 없어요. 물을 충분히 마시고 푹 쉬어요."
# Passage 2 stores its sentence ends as index passages do; passage 1 has none, so the guard splits it.
CONTEXT = [
    ContextPassage(1, "발열 · 대처", FEVER, "KDCA", "sym.fever#overview#0", {}),
    ContextPassage(2, "감기 · 치료", COLD, "KDCA", "cond.common_cold#treatment#0",
                   {"sentence_ends": sentence_ends(split_sentences(COLD))}),
]


@pytest.mark.parametrize(
    "body, claims",
    [
        ("열이 나요. 물을 마셔요 [1]. 쉬어요 [2][3] 괜찮아요", ["열이 나요. 물을 마셔요 [1].", "쉬어요 [2][3]", "괜찮아요"]),
        ("물을 마셔요 [1, 2]! 쉬어요 [3]? 끝", ["물을 마셔요 [1, 2]!", "쉬어요 [3]?", "끝"]),
        ("좋은 하루 보내세요. 또 만나요!", ["좋은 하루 보내세요.", "또 만나요!"]),  # no marker: the splitter cuts
        ("", []),
    ],
)
def test_claims_end_at_citation_markers(body, claims):
    assert claims_of(body) == claims


@pytest.mark.parametrize(
    "line, kept, stats",
    [
        # A whole sentence of the passage it cites is kept as written.
        ("- 감기는 바이러스 질환이라 항생제가 필요 없어요. [2]", "- 감기는 바이러스 질환이라 항생제가 필요 없어요. [2]",
         {"supported": 1, "dropped": 0, "fragments": 0, "cited_numbers": [2]}),
        ("- 사흘 넘게 열이 나면 병원에 가야 해요. [1]", "- 사흘 넘게 열이 나면 병원에 가야 해요. [1]",
         {"supported": 1, "dropped": 0, "fragments": 0, "cited_numbers": [1]}),
        # The period a model puts after the marker goes back to the sentence.
        ("- 물을 충분히 마시고 푹 쉬어요 [2].", "- 물을 충분히 마시고 푹 쉬어요. [2]",
         {"supported": 1, "dropped": 0, "cited_numbers": [2]}),
        ("감기는 바이러스 질환이라 항생제가 필요 없어요.[2]", "감기는 바이러스 질환이라 항생제가 필요 없어요. [2]",
         {"supported": 1, "dropped": 0}),
        # A quote that is not a whole sentence of its passage: dropped and counted as a fragment.
        ("- 감기는 바이러스 질환이라 항생제가 필요 [2]", "",
         {"supported": 0, "dropped": 1, "fragments": 1, "cited_numbers": []}),
        ("- 열이 38도 이상이면 해열제를 [1]", "", {"supported": 0, "dropped": 1, "fragments": 1}),
        # A whole sentence, but not one of the cited passage's sentences: dropped, not a fragment.
        ("- 감기는 바이러스 질환이라 항생제가 필요 없어요. [1]", "", {"supported": 0, "dropped": 1, "fragments": 0}),
        ("- 감기에는 항생제가 필요 없고 물을 충분히 마셔요. [2]", "", {"dropped": 1, "fragments": 0}),  # a paraphrase
        ("- 감기는 바이러스 질환이라 항생제가 필요 없어요. 물을 충분히 마시고 푹 쉬어요. [2]", "",
         {"dropped": 1, "fragments": 0}),  # two sentences under one marker are one claim, not a sentence
        # Citations to numbers that are not in the context are dropped; a valid one keeps the claim.
        ("- 감기는 바이러스 질환이라 항생제가 필요 없어요. [7]", "", {"supported": 0, "dropped": 1, "cited_numbers": []}),
        ("- 감기는 바이러스 질환이라 항생제가 필요 없어요. [2, 7]", "- 감기는 바이러스 질환이라 항생제가 필요 없어요. [2]",
         {"supported": 1, "cited_numbers": [2]}),
        ("- 감기는 바이러스 질환이라 항생제가 필요 없어요. [7][2][2]", "- 감기는 바이러스 질환이라 항생제가 필요 없어요. [2]",
         {"supported": 1, "cited_numbers": [2]}),
        ("- 물을 충분히 마시고 푹 쉬어요. [1, 2]", "- 물을 충분히 마시고 푹 쉬어요. [2]",
         {"supported": 1, "cited_numbers": [2]}),  # [1] exists but does not hold the sentence
    ],
)
def test_extractive_claims_must_be_sentences_of_the_cited_passage(line, kept, stats):
    answer, got = verify_answer(line, CONTEXT)
    assert answer == kept
    assert {k: got[k] for k in stats} == stats
    assert got["medical_sentences"] == got["supported"] + got["dropped"]


def test_each_claim_of_a_line_is_judged_alone():
    answer, stats = verify_answer(
        "- 감기는 바이러스 질환이라 항생제가 필요 없어요 [2]. 항생제가 필요 [2] 물을 충분히 마시고 푹 쉬어요. [2]", CONTEXT)
    assert answer == "- 감기는 바이러스 질환이라 항생제가 필요 없어요. [2] 물을 충분히 마시고 푹 쉬어요. [2]"
    assert stats == {"medical_sentences": 3, "supported": 2, "dropped": 1, "fragments": 1, "repeated": 0,
                     "cited_numbers": [2]}


@pytest.mark.parametrize(
    "line, kept",
    [
        ("- 열이 나면 꼭 병원에 가야 해요.", ""),  # medical words and no citation: dropped
        ("- 머리가 아프면 진통제를 드세요.", ""),
        ("- 좋은 하루 보내세요.", "- 좋은 하루 보내세요."),  # small talk stays
        ("- 감기는 바이러스 질환이라 항생제가 필요 없어요 [2]. 열이 나면 꼭 병원에 가야 해요. 좋은 하루 보내세요.",
         "- 감기는 바이러스 질환이라 항생제가 필요 없어요. [2] 좋은 하루 보내세요."),
        ("- 항생제를 꼭 드세요.", ""),  # a drug class is a medical word
    ],
)
def test_uncited_medical_claims_are_dropped_and_small_talk_is_kept(line, kept):
    answer, _ = verify_answer(line, CONTEXT)
    assert answer == kept


@pytest.mark.parametrize(
    "line, kept",
    [
        ("- 감기에는 항생제가 필요 없고 물을 충분히 마셔요. [2]", True),  # a paraphrase the passage supports
        ("- 물을 충분히 마셔요. [2]", True),
        ("- 감기에는 항생제를 꼭 먹어야 빨리 나아요. [2]", False),  # not in the passage
        ("- 물을 충분히 마시고 푹 쉬어요. [1]", False),  # in another passage than the one cited
        ("- 감기는 바이러스 질환이라 항생제가 [2]", False),  # not a whole sentence
        ("- 감기는 바이러스 질환이라 항생제가 필요 없어요. [9]", False),  # no such passage
        ("- 좋은 하루 보내세요.", False),  # strict: every claim needs a citation
        ("- 감기에는 항생제가 필요 없어요.", False),
    ],
)
def test_model_text_needs_a_valid_citation_for_every_claim(line, kept):
    answer, stats = verify_answer(line, CONTEXT, strict=True)
    assert bool(answer) is kept, (answer, stats)
    assert stats["medical_sentences"] == 1 and stats["supported"] == int(kept)


def test_quoted_can_be_asked_for_with_strict():
    """``quoted`` overrides the default that ``strict`` implies: a paraphrase is then rejected."""
    line = "- 물을 충분히 마셔요. [2]"
    assert verify_answer(line, CONTEXT, strict=True)[0] == line
    assert verify_answer(line, CONTEXT, strict=True, quoted=True)[0] == ""
    assert verify_answer(line, CONTEXT, strict=False, quoted=False)[0] == line


@pytest.mark.parametrize(
    "line, strict",
    [
        ("- 감기는 바이러스 질환이라 항생제가 필요 [2]", False),  # "없어요" cut off
        ("- 감기는 바이러스 질환이라 항생제가 필요 [2]", True),
        ("- 감기는 바이러스 질환이라 항생제가 필요 [2].", False),
        ("- 감기는 바이러스 질환이라 항생제가 필요. [2]", False),
        ("- 감기는 바이러스 질환이라 항생제가 필요 [2].", True),
        ("- 감기는 바이러스 질환이라 항생제가 필요. [2]", True),
    ],
)
def test_a_negation_cut_off_is_never_kept(line, strict):
    answer, stats = verify_answer(line, CONTEXT, strict=strict)
    assert answer == "", stats
    assert stats["dropped"] == 1


@pytest.mark.parametrize("strict", [False, True])
def test_a_quote_cut_before_its_ending_counts_as_a_fragment(strict):
    _, stats = verify_answer("- 감기는 바이러스 질환이라 항생제가 필요 [2]", CONTEXT, strict=strict)
    assert stats["fragments"] == 1


@pytest.mark.parametrize(
    "line",
    [
        "- 감기는 바이러스 질환이라 항생제가 필요해요. [2]",  # passage: 필요 없어요
        "- 사흘 넘게 열이 나도 병원에 갈 필요 없어요. [1]",  # passage: 병원에 가야 해요
        "- 열이 38도 이상이면 해열제를 먹으면 안 돼요. [1]",  # passage: 먹을 수 있어요
    ],
)
def test_a_quote_with_its_negation_turned_around_is_dropped(line):
    assert verify_answer(line, CONTEXT)[0] == ""


@pytest.mark.parametrize(
    "line",
    [
        "- 감기는 바이러스 질환이라 항생제가 필요해요. [2]",  # bigrams alone would keep it: polarity differs
        "- 사흘 넘게 열이 나도 병원에 갈 필요 없어요. [1]",  # an added negation
        "- 열이 38도 이상이면 해열제를 먹으면 안 돼요. [1]",  # a prohibition for a permission
    ],
)
def test_model_text_that_turns_a_negation_around_is_dropped(line):
    answer, stats = verify_answer(line, CONTEXT, strict=True)
    assert answer == "", stats


def test_a_negated_sentence_kept_keeps_its_negation():
    answer, _ = verify_answer("- 감기에는 항생제가 필요 없어요. [2]", CONTEXT, strict=True)
    assert answer == "- 감기에는 항생제가 필요 없어요. [2]"


def test_stored_sentence_ends_decide_what_a_sentence_is():
    """The guard reads the passage's stored ``sentence_ends``; stale ones (not ending at the text's end) are ignored."""
    line = "- 감기는 바이러스 질환이라 항생제가 필요 없어요. [1]"
    one_sentence = [ContextPassage(1, "감기", COLD, metadata={"sentence_ends": [len(COLD)]})]
    stale = [ContextPassage(1, "감기", COLD, metadata={"sentence_ends": [len(COLD) - 3]})]
    assert verify_answer(line, one_sentence)[0] == ""
    assert verify_answer(line, stale)[0] == line


@pytest.mark.parametrize(
    "text, kept",
    [
        ("■ 요약\n- 감기는 바이러스 질환이라 항생제가 필요 없어요. [2]",
         "■ 요약\n- 감기는 바이러스 질환이라 항생제가 필요 없어요. [2]"),
        ("■ 요약\n- 감기는 바이러스 질환이라 항생제가 필요 [2]\n■ 참고\n좋은 하루 보내세요.", "■ 참고\n좋은 하루 보내세요."),
        ("■ 요약\n- 감기는 바이러스 질환이라 항생제가 필요 [2]", ""),  # a last heading left empty goes too
        ("■ 요약\n- 감기는 바이러스 질환이라 항생제가 필요 없어요. [2]\n■ 병원에 가야 할 때\n- 열이 나면 꼭 병원에 가야 해요.",
         "■ 요약\n- 감기는 바이러스 질환이라 항생제가 필요 없어요. [2]"),
        ("■ 요약\n- 감기는 바이러스 질환이라 항생제가 필요 [2]\n\n", ""),  # blank lines are not content
        ("■ 요약\n- 감기는 바이러스 질환이라 항생제가 필요 [2]\n\n■ 참고\n좋은 하루 보내세요.", "■ 참고\n좋은 하루 보내세요."),
    ],
)
def test_headings_left_with_nothing_under_them_are_dropped(text, kept):
    answer, _ = verify_answer(text, CONTEXT)
    assert answer == kept


def test_cited_numbers_are_the_sorted_set_actually_supported():
    text = ("■ 요약\n- 물을 충분히 마시고 푹 쉬어요. [2]\n- 사흘 넘게 열이 나면 병원에 가야 해요. [1]\n"
            "- 감기는 바이러스 질환이라 항생제가 필요 없어요. [2]\n- 열이 38도 이상이면 해열제를 [1]")
    answer, stats = verify_answer(text, CONTEXT)
    assert stats == {"medical_sentences": 4, "supported": 3, "dropped": 1, "fragments": 1, "repeated": 0,
                     "cited_numbers": [1, 2]}
    assert "해열제를" not in answer and answer.count("\n") == 3


def test_nothing_is_supported_without_context():
    answer, stats = verify_answer("- 감기는 바이러스 질환이라 항생제가 필요 없어요. [1]", [])
    assert answer == "" and stats["dropped"] == 1 and stats["cited_numbers"] == []
