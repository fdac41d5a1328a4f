"""What a person says about themselves (kmed.agent.profile): ages, pregnancy, durations, children."""

from __future__ import annotations

import pytest

from kmed.agent.profile import Profile, extract_profile


@pytest.mark.parametrize(
    "text, expected",
    [
        ("생후 2개월 아기가 열이 나요", {"age_months": 2, "is_child": True}),
        ("태어난 지 20일 된 아기가 토해요", {"age_months": 0, "is_child": True}),
        ("태어난지 2개월인데 열이 나요", {"age_months": 2, "is_child": True}),
        ("3개월 전부터 허리가 아파요", {"duration": "3개월 전부터"}),
        ("임신 12주인데 타이레놀 먹어도 돼요?", {"pregnant": True, "pregnancy_weeks": 12}),
        ("만삭인데 밤마다 종아리에 쥐가 나요", {"pregnant": True}),
        ("preg 24w인데 숨이 좀 차요", {"pregnant": True}),
        ("임신은 아니에요", {"pregnant": False}),
        ("애가 밥을 먹고 나면 배가 아프다네", {"is_child": True}),
        ("고1 여자인데 어지러워요", {"is_child": True, "sex": "female"}),
        ("70대 아버지가 기침을 하세요", {"age_years": 75, "is_child": False}),
        ("두돌 아기 열이 37.9도예요", {"age_years": 2, "is_child": True}),
        ("돌쟁이 아기 얼굴에 빨간 점이 있어요", {"age_months": 12, "is_child": True}),
    ],
)
def test_extract_table(text, expected):
    found = extract_profile(text)
    assert {k: found.get(k) for k in expected} == expected, found


@pytest.mark.parametrize("text", ["고열이 나요", "고혈압 약 먹어요", "초기 증상이 뭐예요?", "애매하게 아파요",
                                  "돌멩이에 걸려 넘어졌어요", "돌발성 난청이 뭐예요?"])
def test_words_that_only_look_like_ages_or_children(text):
    found = extract_profile(text)
    assert "is_child" not in found and "pregnant" not in found, found


def test_later_turns_refine_earlier_ones():
    profile = Profile()
    profile.merge(extract_profile("아이가 열이 나요"))
    profile.merge(extract_profile("네 살이에요"))
    assert profile.is_child and profile.age_years == 4 and profile.age_in_months() == 48
