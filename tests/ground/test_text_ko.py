"""The one Korean sentence splitter and the text helpers every floor shares (kmed.text_ko)."""

from __future__ import annotations

import pytest

from kmed import text_ko
from kmed.text_ko import (
    KIWI_DEFAULT_DICT,
    KIWI_MULTI_DICT,
    is_whole_sentence,
    josa,
    kiwi_dict_tag,
    kiwi_multi_dict,
    normalize_space,
    overlap,
    pack_sentences,
    passage_sentences,
    sentence_ends,
    split_sentences,
    word_initials,
)


def test_negation_is_never_cut_off():
    text = "감기는 바이러스 질환이라 항생제가 필요 없어요. 35세 이상 성인은 해마다 검진을 받아요."
    assert split_sentences(text) == ["감기는 바이러스 질환이라 항생제가 필요 없어요.", "35세 이상 성인은 해마다 검진을 받아요."]


@pytest.mark.parametrize(
    "text, pieces",
    [
        # Kiwi alone ends a sentence inside the parenthesis; the cut is not at a space, so it is merged back.
        ("꼭 확인해요(검사 2주 전부터는 약을 쉬어요). 발진이 생기면 연락해요.",
         ["꼭 확인해요(검사 2주 전부터는 약을 쉬어요).", "발진이 생기면 연락해요."]),
        ("다뇨·심한 갈증·체중 감소가 있으면 검사해요.", ["다뇨·심한 갈증·체중 감소가 있으면 검사해요."]),
        ("목마름, 다뇨, 피로가 흔해요.", ["목마름, 다뇨, 피로가 흔해요."]),
        ("열이 나요 그래서 쉬어요.", ["열이 나요", "그래서 쉬어요."]),
        # A connective -어/-아 that Kiwi reads as the 반말 final ending is not a boundary: cut there,
        # "하지 않아요." would be quoted on its own.
        ("식초나 빙초산에 발을 담그는 민간요법은 화학 화상을 일으킬 수 있어 하지 않아요.",
         ["식초나 빙초산에 발을 담그는 민간요법은 화학 화상을 일으킬 수 있어 하지 않아요."]),
        ("대부분 증상이 없어 모르고 지내다가 뒤늦게 발견되기도 해요. 검사를 받아요.",
         ["대부분 증상이 없어 모르고 지내다가 뒤늦게 발견되기도 해요.", "검사를 받아요."]),
        ("효과가 빨리 사라져 한두 번만 걸러도 위험이 올라가요.", ["효과가 빨리 사라져 한두 번만 걸러도 위험이 올라가요."]),
        ("", []),
        ("   ", []),
    ],
)
def test_split_table(text, pieces):
    assert split_sentences(text) == pieces


def test_line_breaks_are_boundaries_when_asked():
    assert split_sentences("첫 줄이에요\n둘째 줄이에요", keep_lines=True) == ["첫 줄이에요", "둘째 줄이에요"]


@pytest.mark.parametrize(
    "sentence, whole",
    [
        ("항생제가 필요 없어요.", True),
        ("항생제가 필요 없어요", True),
        ("하지만 아이는 다르다", True),
        ("감기는 바이러스 질환이라 항생제가 필요", False),
        ("35세 이상 성인은 해마다", False),
        ("감기보다", False),
        ("소금을 줄여요 [2]", True),
        ("", False),
    ],
)
def test_whole_sentence(sentence, whole):
    assert is_whole_sentence(sentence) is whole


def test_every_kb_text_splits_losslessly_into_whole_sentences(kb):
    texts = []
    for entry in [*kb.conditions.values(), *kb.drugs.values()]:
        texts += [v for v in entry.sections.values() if v]
    for entry in [*kb.symptoms.values(), *kb.tests.values(), *kb.departments.values()]:
        if getattr(entry, "description", None):
            texts.append(entry.description)
    for rule in kb.red_flags.values():
        texts += [rule.reason, rule.action]
    assert len(texts) > 2000
    for text in texts:
        pieces = split_sentences(text)
        assert " ".join(pieces) == normalize_space(text), text
        for piece in pieces:
            assert is_whole_sentence(piece), (piece, text)
        # The KB is punctuated prose: a cut anywhere but after its punctuation is a connective misread
        # as a final ending ("…화상을 일으킬 수 있어" + "하지 않아요.").
        for piece in pieces[:-1]:
            assert piece.rstrip(text_ko._CLOSERS)[-1:] in text_ko._FINAL_PUNCT, (piece, text)


def test_stored_sentence_ends_round_trip():
    sentences = ["열이 나요.", "물을 충분히 마셔요.", "사흘 넘게 가면 진료를 받아요."]
    for chunk in pack_sentences(sentences, 25):
        pieces = split_sentences(chunk)
        assert passage_sentences(chunk, sentence_ends(pieces)) == pieces
    text = " ".join(sentences)
    assert passage_sentences(text, sentence_ends(sentences)) == sentences
    assert passage_sentences(text, [3]) == split_sentences(text)  # ends that do not fit: split again


def test_pack_never_splits_a_sentence():
    sentences = ["가" * 30 + "요.", "나" * 30 + "요.", "다" * 300 + "요."]
    packed = pack_sentences(sentences, 70)
    assert packed == [sentences[0] + " " + sentences[1], sentences[2]]


def test_overlap_and_josa():
    assert overlap("두통이 심해요", "두통이 심하면 쉬어요") >= 0.5
    assert "술" in word_initials("술(알코올)과 함께하면") and "술" not in word_initials("수술 뒤에는")
    assert josa("위염", "는") == "위염은" and josa("감기", "이") == "감기가" and josa("코", "로") == "코로"


def test_no_other_sentence_splitter_in_the_package():
    """Every splitter is this one: no module keeps its own sentence-ending regex."""
    import pathlib
    import re

    root = pathlib.Path(__file__).resolve().parents[2] / "kmed"
    # a lookbehind split on sentence-final characters, Kiwi's splitter, or a function of that name
    pattern = re.compile(r"re\.compile\(r\"\(\?<=\[[^]]*[.!?]|split_into_sents|def split_sentences\(")
    owners = sorted(str(p.relative_to(root)) for p in root.rglob("*.py") if pattern.search(p.read_text(encoding="utf-8")))
    assert owners == ["text_ko.py"]



@pytest.mark.parametrize("value, expected", [("0", False), ("off", False), ("1", True), (" TRUE ", True)])
def test_kiwi_multi_dict_setting(monkeypatch, value, expected):
    monkeypatch.setenv("KMED_KIWI_MULTI_DICT", value)
    monkeypatch.setenv("KMED_KIWI_DEFAULT_DICT", "1")
    assert kiwi_multi_dict() is expected
    assert kiwi_dict_tag() == ("" if expected else "+no-multi-dict+kb-names")


def test_kiwi_default_dict_setting_is_recorded_in_the_tag(monkeypatch):
    from kmed.errors import ConfigError
    from kmed.text_ko import kiwi_default_dict

    monkeypatch.setenv("KMED_KIWI_MULTI_DICT", "0")
    monkeypatch.setenv("KMED_KIWI_DEFAULT_DICT", "off")
    assert kiwi_default_dict() is False and kiwi_dict_tag() == "+no-multi-dict+kb-names+no-default-dict+kb-words"
    monkeypatch.setenv("KMED_KIWI_DEFAULT_DICT", "1")
    assert kiwi_default_dict() is True and kiwi_dict_tag() == "+no-multi-dict+kb-names"
    monkeypatch.delenv("KMED_KIWI_DEFAULT_DICT")
    assert kiwi_default_dict() is KIWI_DEFAULT_DICT
    monkeypatch.setenv("KMED_KIWI_DEFAULT_DICT", "maybe")
    with pytest.raises(ConfigError, match="KMED_KIWI_DEFAULT_DICT=0 또는 1"):
        kiwi_default_dict()


def test_kiwi_multi_dict_default_and_a_bad_value(monkeypatch):
    from kmed.errors import ConfigError

    monkeypatch.delenv("KMED_KIWI_MULTI_DICT", raising=False)
    assert kiwi_multi_dict() is KIWI_MULTI_DICT
    monkeypatch.setenv("KMED_KIWI_MULTI_DICT", "maybe")
    with pytest.raises(ConfigError, match="KMED_KIWI_MULTI_DICT"):
        kiwi_multi_dict()


def test_kiwi_is_built_in_one_place():
    """Every Kiwi comes from text_ko.new_kiwi, so the multi-word dictionary setting reaches them all."""
    import pathlib
    import re

    root = pathlib.Path(__file__).resolve().parents[2] / "kmed"
    pattern = re.compile(r"\bKiwi\(")
    owners = sorted(str(p.relative_to(root)) for p in root.rglob("*.py") if pattern.search(p.read_text(encoding="utf-8")))
    assert owners == ["text_ko.py"]


@pytest.mark.parametrize(
    "sentence, leans",
    [
        ("해열제는 이런 열에는 효과가 없어요.", True),  # "이런 열": the fever of the sentence before
        ("그래서 물을 자주 마셔요.", True),
        ("이 경우 바로 병원에 가요.", True),
        ("이 약은 공복에 먹어요.", True),  # which medicine? the passage's title, not the answer's
        ("열이 나면 물을 자주 마셔요.", False),
        ("이마에 열이 나요.", False),
        ("그네에서 떨어져 다쳤어요.", False),
    ],
)
def test_sentences_that_lean_on_the_one_before(sentence, leans):
    from kmed.text_ko import leans_on_previous

    assert leans_on_previous(sentence) is leans
