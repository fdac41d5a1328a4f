"""Every red-flag rule's own examples: ``trigger`` messages must fire it, ``no_trigger`` must not."""

from __future__ import annotations

import pytest

from kmed.agent.profile import Profile, extract_profile
from kmed.agent.red_flags import RedFlagEngine
from kmed.data.kb import load_kb_or_fail

_KB = load_kb_or_fail()
_CASES = [(r.id, text, True) for r in _KB.red_flags.values() for text in r.examples.trigger] + [
    (r.id, text, False) for r in _KB.red_flags.values() for text in r.examples.no_trigger
]


@pytest.fixture(scope="module")
def engine(kb):
    return RedFlagEngine(kb)


def _fired(engine, linker, text: str) -> set[str]:
    mentions = linker.link(text)
    profile = Profile()
    profile.merge(extract_profile(text, mentions))
    mentioned = {m.id for m in mentions if not m.negated}
    return {m.rule.id for m in engine.evaluate(text, mentioned, profile)}


@pytest.mark.parametrize(("rule_id", "text", "should_fire"), _CASES, ids=[f"{c[0]}:{c[1][:20]}" for c in _CASES])
def test_rule_examples(engine, linker, rule_id, text, should_fire):
    fired = _fired(engine, linker, text)
    if should_fire:
        assert rule_id in fired, f"{rule_id} should fire on {text!r}; fired {sorted(fired)}"
    else:
        assert rule_id not in fired, f"{rule_id} must not fire on {text!r}"


def test_there_are_rules_for_core_emergencies(kb):
    assert len(kb.red_flags) >= 1
    assert all(r.hotlines for r in kb.red_flags.values())


def test_session_accumulates_symptoms_across_turns(engine, linker):
    """A symptom from an earlier turn combines with a later one."""
    mentioned: set[str] = set()
    for text in ["가슴이 아파요", "식은땀도 나요"]:
        mentioned |= {m.id for m in linker.link(text) if not m.negated}
    fired = {m.rule.id for m in engine.evaluate("식은땀도 나요", mentioned, Profile())}
    assert "rf.acute_chest_pain" in fired


def test_negated_text_pattern_does_not_fire(engine, linker):
    assert "rf.acute_chest_pain" not in _fired(engine, linker, "가슴을 쥐어짜는 통증은 없어요")
