"""Cleaning, multiple-choice parsing, dedupe and the eval scoring helpers."""

from __future__ import annotations

import pytest

from kmed.data.aihub.choices import answer_label, split_circled, split_question, strip_label
from kmed.data.aihub.dedupe import dedupe
from kmed.data.aihub.evalsets import key_fact_recall, key_facts, parse_choice, score_mcq
from kmed.data.aihub.text import chunk, clean_text, content_terms, guess_lang, norm_key


def test_clean_text_removes_markup_and_tidies_whitespace_but_keeps_latex():
    raw = "\ufeff첫 줄<br>둘째&nbsp;줄 <b>강조</b>\u200b\r\n\r\n\r\n\r\n셋째   줄\t끝  "
    assert clean_text(raw) == "첫 줄\n둘째 줄 강조\n\n셋째 줄 끝"
    assert clean_text("$x<y$ 이고 $y>z$ 이다") == "$x<y$ 이고 $y>z$ 이다"
    assert clean_text("a &lt; b &amp; c") == "a < b & c"
    assert clean_text("역류") == "역류"  # NFD jamo → NFC syllables
    assert clean_text(None) == ""


def test_chunk_is_sentence_aligned_and_bounded():
    text = " ".join(f"{i}번째 문장은 이렇게 끝난다." for i in range(30))
    pieces = chunk(text, 80)
    assert all(len(p) <= 80 for p in pieces)
    assert all(p.endswith("끝난다.") for p in pieces)
    assert " ".join(pieces) == text
    assert chunk("가" * 250, 100) == ["가" * 100, "가" * 100, "가" * 50]


def test_norm_key_terms_and_language():
    assert norm_key("역류성 식도염, 치료!") == norm_key("역류성식도염 치료") == "역류성식도염치료"
    assert content_terms("역류성 식도염은 속쓰림이 흔하다") == ["역류성", "식도염", "속쓰림", "흔하다"]
    assert guess_lang("Proton pump inhibitors") == "en" and guess_lang("양성자펌프억제제 PPI") == "ko"


@pytest.mark.parametrize(
    ("question", "stem", "options"),
    [
        ("질문?\n1) 가\n2) 나\n3) 다", "질문?", {"1": "가", "2": "나", "3": "다"}),
        ("질문?\n① 가\n② 나", "질문?", {"1": "가", "2": "나"}),
        ("질문? 1) 가 2) 나 3) 다", "질문?", {"1": "가", "2": "나", "3": "다"}),
        ("질문?\n1)가\n 긴 보기\n2) 나", "질문?", {"1": "가 긴 보기", "2": "나"}),
        ("서술하시오.", "서술하시오.", {}),
        ("1) 하나만 있는 보기", "1) 하나만 있는 보기", {}),
    ],
)
def test_split_question(question, stem, options):
    assert split_question(question) == (stem, options)


@pytest.mark.parametrize(
    ("answer", "label"),
    [("3) 약물 C", "3"), ("③", "3"), ("③ 약물 C", "3"), ("정답: 4번", "4"), ("(2) 약물 B", "2"), ("약물 E", "5"), ("3.5 mg", ""), ("모름", "")],
)
def test_answer_label(answer, label):
    options = {str(i): f"약물 {c}" for i, c in enumerate("ABCDE", start=1)}
    assert answer_label(answer, options) == label


def test_circled_options_and_label_stripping():
    assert split_circled("① 2 ② -4 ④ 8 ⑤ 16\n③ 4") == {"1": "2", "2": "-4", "4": "8", "5": "16", "3": "4"}
    assert strip_label("③ 함께 일한다") == "함께 일한다"


def _dedupe(texts, threshold=0.9):
    items = list(enumerate(texts))
    kept, stats = dedupe(items, text_of=lambda x: x[1], uid_of=lambda x: str(x[0]), near_threshold=threshold)
    return [i for i, _ in kept], stats


def test_dedupe_exact_near_and_distinct():
    base = "만성 기침은 8주 이상 지속되는 기침을 말한다. 흔한 원인은 상기도 기침 증후군, 천식, 위식도 역류 질환이며 흉부 엑스선 검사로 폐암이나 결핵을 먼저 배제한다."
    texts = [
        base,
        base.replace(" ", "  ").replace(".", ""),  # exact once spacing and punctuation are ignored
        base.replace("먼저 배제한다", "반드시 먼저 배제한다"),  # near
        "아토피 피부염의 기본 치료는 보습제를 하루 두 번 이상 바르는 피부 관리이다. 가려움이 심하면 국소 스테로이드를 쓴다.",
    ]
    kept, stats = _dedupe(texts)
    assert kept == [0, 3]
    assert (stats.exact, stats.near) == (1, 1)
    assert stats.pairs == [("1", "0"), ("2", "0")]
    kept, stats = _dedupe(texts, threshold=1.0)  # near-dedupe off
    assert kept == [0, 2, 3]


def test_dedupe_keeps_short_distinct_answers():
    kept, _ = _dedupe(["속쓰림", "AED", "분당 100~120회", "속쓰림 "])
    assert kept == [0, 1, 2]


def test_mcq_scoring_by_option():
    assert parse_choice("정답은 ③ 아세트아미노펜이에요") == "3"
    assert parse_choice("2번이 맞아요") == "2"
    assert parse_choice("3) 스테로이드") == "3"
    assert score_mcq("정답: 2", "2") == 1.0
    assert score_mcq("정답: 4", "2") == 0.0
    assert score_mcq("모르겠어요", "2") == 0.0


def test_key_facts_and_recall():
    facts = key_facts("역류성 식도염의 합병증을 설명하시오.", "식도 궤양과 출혈, 식도 협착이 생길 수 있고 오래되면 바렛 식도로 진행해 식도암 위험이 높아진다.", "descriptive")
    assert facts[:4] == ["식도 궤양", "출혈", "식도 협착", "바렛 식도"]
    assert "진행" not in facts  # a verb noun ("진행하다") is not a fact
    assert key_facts("기준은?", "140/90 mmHg 이상", "short") == ["140/90 mmHg 이상"]
    assert key_facts("약은?", "아세트아미노펜, 이부프로펜", "short") == ["아세트아미노펜", "이부프로펜"]
    assert key_fact_recall("식도궤양이 생기고 출혈할 수 있어요", ["식도 궤양", "출혈", "바렛 식도"]) == pytest.approx(2 / 3)
    assert key_fact_recall("아무 말", []) == 0.0
