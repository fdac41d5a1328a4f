"""Term dictionary and entity linking on Kiwi morphemes (mini KB, so results are stable)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kmed.data.kb import load_kb_or_fail
from kmed.kg.linker import EntityLinker

MINI = Path(__file__).parents[1] / "fixtures" / "kb_mini"


@pytest.fixture(scope="module")
def mini_linker():
    return EntityLinker.from_kb(load_kb_or_fail(MINI))


def ids(linker, text, negated=False):
    return [m.id for m in linker.link(text) if m.negated == negated]


@pytest.mark.parametrize("text", ["역류성식도염이 있어요", "역류성 식도염은요", "역류성식도염을 진단받았어요", "GERD 약", "reflux esophagitis"])
def test_glued_spaced_particles_and_english_link(mini_linker, text):
    assert "cond.gerd" in ids(mini_linker, text)


def test_glued_compound_is_one_kiwi_token(mini_linker):
    tokens = mini_linker.terms.tokenize("역류성식도염이")
    assert tokens[0].form == "역류성식도염" and tokens[1].form == "이"


def test_compound_plus_noun_splits():
    """"고혈압약은" → 고혈압 + 약 once 고혈압 is registered (NNG)."""
    from kmed.kg.terms import TermDictionary, TermEntry

    terms = TermDictionary([TermEntry("cond.hypertension", "disease", "고혈압", "고혈압")], user_words=["고혈압"])
    forms = [t.form for t in terms.tokenize("고혈압약은")]
    assert forms[:2] == ["고혈압", "약"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("배가 아파요", "sym.abdominal_pain"),
        ("배아파요", "sym.abdominal_pain"),
        ("배가 살살 아파요", "sym.abdominal_pain"),
        ("배가 꼬이듯 아파요", "sym.abdominal_pain"),
        ("속이 너무 쓰려요", "sym.heartburn"),
        ("어지러워요", "sym.dizziness"),
        ("눈앞이 핑 돌아요", "sym.dizziness"),
        ("숨이 차요", "sym.dyspnea"),
        ("신물이 올라와요", "sym.acid_regurgitation"),
        ("타이레놀 먹어도 돼요?", "drug.acetaminophen"),
    ],
)
def test_lay_terms_link(mini_linker, text, expected):
    assert expected in ids(mini_linker, text)


@pytest.mark.parametrize("text", ["문을 열어요", "돌아요", "배를 타고 여행 가요", "비트코인 시세", "목요일에 만나요"])
def test_words_that_must_not_link(mini_linker, text):
    assert ids(mini_linker, text) == []


@pytest.mark.parametrize(
    ("text", "entity"),
    [
        ("가슴 통증은 없어요", "sym.chest_pain"),
        ("가슴이 안 아파요", "sym.chest_pain"),
        ("가슴이 아프지 않아요", "sym.chest_pain"),
        ("열은 전혀 없어요", "sym.fever"),
    ],
)
def test_negation(mini_linker, text, entity):
    assert entity in ids(mini_linker, text, negated=True)
    assert entity not in ids(mini_linker, text)


def test_coordinated_negation_and_clause_boundary(mini_linker):
    assert set(ids(mini_linker, "두통이나 열은 없어요", negated=True)) == {"sym.headache", "sym.fever"}
    assert ids(mini_linker, "기침 때문에 잠을 못 자요") == ["sym.cough"]
    assert ids(mini_linker, "열이 나고 가슴은 안 아파요") == ["sym.fever"]


def test_spans_point_at_the_text(mini_linker):
    text = "어제부터 열이 나고 목이 아파요"
    for m in mini_linker.link(text):
        assert text[m.start : m.end] == m.surface


def test_dictionary_round_trips_through_plain_data(mini_linker):
    from kmed.kg.terms import TermDictionary

    clone = TermDictionary.from_dict(mini_linker.terms.to_dict(), kiwi=mini_linker.terms.kiwi)
    assert clone.keys.keys() == mini_linker.terms.keys.keys()
