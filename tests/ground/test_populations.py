"""Population definitions (kmed.populations) and where they apply: profile, drug safety, DUR age bands."""

from __future__ import annotations

import pytest

from kmed import populations as P
from kmed.agent.profile import Profile, extract_profile


@pytest.mark.parametrize(
    "months, years, expected",
    [
        (0, None, {"infants", "children"}),
        (23, None, {"infants", "children"}),
        (24, 2, {"children"}),
        (11 * 12, 11, {"children"}),
        (12 * 12, 12, set()),
        (14 * 12, 14, set()),
        (64 * 12, 64, set()),
        (65 * 12, 65, {"elderly"}),
        (None, 75, {"elderly"}),  # "70대" gives years only
        (None, None, set()),
    ],
)
def test_age_groups(months, years, expected):
    assert P.populations(months, years, None, None) == expected


def test_pregnancy_and_breastfeeding_add_their_groups_and_unknown_adds_none():
    assert P.populations(None, 30, True, True) == {"pregnancy", "lactation"}
    assert P.populations(None, 30, False, False) == set()
    assert P.populations(None, 30, None, None) == set()


def test_adolescent_and_pediatric_boundaries():
    assert not P.is_adolescent(11 * 12) and P.is_adolescent(12 * 12) and P.is_adolescent(18 * 12 + 11)
    assert not P.is_adolescent(19 * 12)
    assert P.is_pediatric(14 * 12 + 11) and not P.is_pediatric(15 * 12) and not P.is_pediatric(None)


def test_every_person_population_is_a_kb_population():
    from kmed.data.kb_schema import POPULATIONS

    assert set(P.PERSON_POPULATIONS) <= set(POPULATIONS)


@pytest.mark.parametrize(
    "bound_months, upward, expected",
    [(24, False, "infants"), (6, False, "infants"), (12 * 12, False, "children"), (65 * 12, True, "elderly"),
     (60 * 12, True, "elderly"), (12 * 12, True, "children")],
)
def test_dur_age_bands(bound_months, upward, expected):
    from kmed.data.dur.handlers import age_population

    assert P.age_band_population(bound_months, upward) == expected
    unit_value = ("개월", bound_months) if bound_months < 24 or bound_months % 12 else ("세", bound_months // 12)
    cond = "이상" if upward else "미만"
    assert age_population(str(unit_value[1]), unit_value[0], cond, "")[0] == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("수유 중인데 감기약 먹어도 돼요?", True),
        ("모유 수유하고 있어요", True),
        ("젖 먹이는 중이에요", True),
        ("수유부인데 타이레놀 괜찮나요", True),
        ("혼합 수유 중이에요", True),
        ("수유 중인데 약 먹으면 수유 중단해야 하나요?", True),
        ("단유했어요", False),
        ("모유 수유 안 해요", False),
        ("분유만 먹여요", False),
    ],
)
def test_breastfeeding_is_read_from_korean_phrasings(text, expected):
    assert extract_profile(text).get("breastfeeding") is expected


@pytest.mark.parametrize("text", ["분유 먹이는 중이에요", "분유 수유 중이에요", "젖병 수유해요", "젖먹이 아기가 열이 나요",
                                  "수유실에서 넘어졌어요", "두통이 있어요"])
def test_formula_and_look_alikes_are_not_breastfeeding(text):
    assert "breastfeeding" not in extract_profile(text)


def test_profile_breastfeeding_is_refined_by_later_turns_and_joins_lactation():
    profile = Profile()
    profile.merge(extract_profile("모유 수유 중이에요"))
    assert profile.breastfeeding is True and "lactation" in profile.populations()
    assert profile.to_dict()["breastfeeding"] is True
    profile.merge(extract_profile("지난주에 단유했어요"))
    assert profile.breastfeeding is False and "lactation" not in profile.populations()


def test_lactation_edges_warn_a_breastfeeding_person_only(kb):
    from kmed.agent.output_guard import drug_safety_facts
    from kmed.kg.graph import GraphQueries, build_graph

    queries = GraphQueries(build_graph(kb))
    drug = next(d.id for d in kb.drugs.values() if any(c.population == "lactation" for c in d.contraindications))
    nursing = drug_safety_facts([drug], Profile(breastfeeding=True), queries)
    assert any("수유" in warning for _, warning, _ in nursing)
    assert not any("수유" in warning for _, warning, _ in drug_safety_facts([drug], Profile(), queries))
    assert not any("수유" in warning for _, warning, _ in drug_safety_facts([drug], Profile(breastfeeding=False), queries))


def test_pediatric_age_sets_is_child_and_pediatrics_first():
    assert extract_profile("14살인데 배가 아파요")["is_child"] is True
    assert extract_profile("15살인데 배가 아파요")["is_child"] is False
