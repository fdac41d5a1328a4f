"""KB chunking (kmed.retrieval.chunking): passages of whole sentences, lossless, bounded, with stable ids.

Section text is cut by the one sentence splitter (``kmed.text_ko.split_sentences``) and the
sentences are packed greedily into passages of at most ``max_chars``, joined by one space. A
single sentence longer than ``max_chars`` becomes a passage of its own, never cut. Passages store
``sentence_ends`` (end offsets in the passage text) so a turn reads their sentences without
running the splitter again. KB tests here use the small fixture KB (tests/fixtures/kb_mini);
topic passages, which are never re-split, use the shipped KB.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kmed.data.kb import load_kb_or_fail
from kmed.data.kb_schema import CONDITION_SECTIONS
from kmed.retrieval.chunking import DEFAULT_MAX_CHARS, _topic_passages, kb_passages, section_passages
from kmed.text_ko import normalize_space, passage_sentences, split_sentences

MINI = Path(__file__).parents[1] / "fixtures" / "kb_mini"

TEXT = ("감기는 바이러스 질환이라 항생제가 필요 없어요. 물을 충분히 마시고 푹 쉬어요. "
        "열이 38도 이상이면 해열제를 먹을 수 있어요. 사흘 넘게 열이 나면 병원에 가야 해요. "
        "숨이 차거나 가슴이 아프면 바로 응급실에 가요.")
LONG_SENTENCE = "이 문장은 " + "아주 " * 40 + "길지만 한 문장이에요."


def chunk(text: str, max_chars: int) -> list:
    return list(section_passages("cond.common_cold#treatment", "감기 · 치료", text, {"section": "treatment"}, max_chars))


def sentences_of(passages) -> list[str]:
    return [s for p in passages for s in passage_sentences(p.text, p.metadata["sentence_ends"])]


def check_passage(passage, max_chars: int) -> None:
    """The invariants every chunked passage keeps."""
    ends = passage.metadata["sentence_ends"]
    assert ends and ends == sorted(ends) and ends[-1] == len(passage.text), passage.id
    sentences = passage_sentences(passage.text, ends)
    assert " ".join(sentences) == passage.text, passage.id  # the stored ends cut at single spaces
    assert all(s and s == s.strip() for s in sentences), passage.id
    assert len(passage.text) <= max_chars or len(sentences) == 1, passage.id


def test_the_sample_text_has_five_sentences():
    """The tables below assume this split; if Kiwi splits differently, they need new sizes."""
    assert [len(s) for s in split_sentences(TEXT)] == [26, 17, 26, 22, 26]


@pytest.mark.parametrize(
    "max_chars, sizes",
    [
        (10, [1, 1, 1, 1, 1]),  # smaller than every sentence: one sentence each, none cut
        (43, [1, 1, 1, 1, 1]),  # 26 + 1 + 17 = 44 does not fit
        (44, [2, 1, 1, 1]),  # fits exactly
        (80, [3, 2]),
        (DEFAULT_MAX_CHARS, [5]),
    ],
)
def test_sentences_are_packed_greedily_and_never_cut(max_chars, sizes):
    passages = chunk(TEXT, max_chars)
    assert [len(p.metadata["sentence_ends"]) for p in passages] == sizes
    assert sentences_of(passages) == split_sentences(TEXT)
    assert " ".join(p.text for p in passages) == TEXT
    for p in passages:
        check_passage(p, max_chars)


def test_ids_number_the_passages_of_a_section_from_zero():
    passages = chunk(TEXT, 44)
    assert [p.id for p in passages] == [f"cond.common_cold#treatment#{n}" for n in range(4)]
    assert all(p.title == "감기 · 치료" and p.metadata["section"] == "treatment" for p in passages)


def test_an_over_long_sentence_is_a_passage_of_its_own_and_is_not_cut():
    passages = chunk(f"짧아요. {LONG_SENTENCE} 끝이에요.", 30)
    assert [p.text for p in passages] == ["짧아요.", LONG_SENTENCE, "끝이에요."]
    assert len(LONG_SENTENCE) > 30 and passages[1].metadata["sentence_ends"] == [len(LONG_SENTENCE)]


@pytest.mark.parametrize(
    "text, texts",
    [
        ("첫 문장이에요.\n\n  둘째   문장이에요.", ["첫 문장이에요. 둘째 문장이에요."]),  # whitespace is normalised
        ("", []),
        ("   \n ", []),
    ],
)
def test_whitespace_is_normalised_and_empty_text_gives_nothing(text, texts):
    assert [p.text for p in chunk(text, 100)] == texts


def test_metadata_is_copied_not_shared():
    shared = {"section": "treatment"}
    passages = list(section_passages("x", "t", TEXT, shared, 44))
    passages[0].metadata["section"] = "changed"
    assert shared == {"section": "treatment"} and passages[1].metadata["section"] == "treatment"
    assert "sentence_ends" not in shared


@pytest.mark.parametrize("max_chars", [60, DEFAULT_MAX_CHARS])
def test_every_kb_passage_keeps_the_invariants(mini_kb, max_chars):
    passages = list(kb_passages(mini_kb, max_chars=max_chars))
    assert len({p.id for p in passages}) == len(passages)
    for p in passages:
        check_passage(p, max_chars)


def test_condition_sections_chunk_back_to_their_text(mini_kb):
    """Each condition section, read back from its passages, is the section's sentences in order."""
    passages = list(kb_passages(mini_kb, max_chars=60))
    assert any(p.id.endswith("#1") for p in passages)  # 60 is small enough to cut some sections
    for c in mini_kb.conditions.values():
        for section in CONDITION_SECTIONS:
            prefix = f"{c.id}#{section}#"
            own = [p for p in passages if p.id.startswith(prefix)]
            assert [p.id for p in own] == [f"{prefix}{n}" for n in range(len(own))]
            assert sentences_of(own) == split_sentences(c.sections[section])
            assert " ".join(p.text for p in own) == normalize_space(c.sections[section])
            assert all(p.metadata["entity_ids"] == [c.id] and p.metadata["section"] == section for p in own)


def test_kb_passages_are_deterministic(mini_kb):
    first = [p.to_dict() for p in kb_passages(mini_kb)]
    again = [p.to_dict() for p in kb_passages(load_kb_or_fail(MINI))]
    assert first == again


def test_one_passage_entries_get_overview_ids(mini_kb):
    ids = {p.id for p in kb_passages(mini_kb)}
    for entry in [*mini_kb.tests.values(), *mini_kb.departments.values()]:
        assert f"{entry.id}#overview#0" in ids
    for s in mini_kb.symptoms.values():
        section = "overview" if s.description else "lay_terms"
        assert f"{s.id}#{section}#0" in ids


@pytest.mark.parametrize("max_chars", [80, DEFAULT_MAX_CHARS])
def test_topic_sentences_are_packed_as_written(kb, max_chars):
    """Topic sentences are one claim each: packed in order, never re-split, ``sentence_ends`` on them."""
    passages = list(_topic_passages(kb, max_chars=max_chars))
    assert passages
    for t in kb.topics.values():
        own = [p for p in passages if p.id.startswith(f"{t.id}#overview#")]
        assert [p.id for p in own] == [f"{t.id}#overview#{n}" for n in range(len(own))]
        assert sentences_of(own) == [s.strip() for s in t.sentences]
        for p in own:
            check_passage(p, max_chars)
