"""Deterministic red-flag escalation from the KB's rules (``data/kb/red_flags/``).

    python -m kmed.agent.red_flags "가슴이 쥐어짜듯 아프고 식은땀이 나요"

A rule fires when any of its patterns holds. A pattern holds when every part it gives holds:
all ``all_of`` ids and at least one ``any_of`` id are mentioned, not negated, in this session;
a ``text_any`` regex matches the current message with whitespace removed and is not followed by
a negation; and the age and pregnancy filters fit what the person said. No model is involved,
so the same words always give the same escalation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kmed.agent.profile import Profile
from kmed.data.kb import KnowledgeBase
from kmed.data.kb_schema import RedFlagPattern, RedFlagRule

# 괜찮 is left out on purpose: "…식은땀이 나는데 괜찮을까요?" asks, it does not deny.
_NEGATION_AFTER = re.compile(r"^.{0,8}?(없|않|아니|안[했해하])")
_LEVEL_ORDER = {"emergency": 2, "urgent": 1}


@dataclass(frozen=True)
class RedFlagMatch:
    rule: RedFlagRule
    evidence: tuple[str, ...]  # entity ids or matched text that fired the rule

    @property
    def level(self) -> str:
        return self.rule.level


def _compile(rule: RedFlagRule) -> list[tuple[RedFlagPattern, list[re.Pattern]]]:
    return [(p, [re.compile(rx) for rx in p.text_any]) for p in rule.patterns]


class RedFlagEngine:
    def __init__(self, kb: KnowledgeBase):
        self.rules = list(kb.red_flags.values())
        self._compiled = {rule.id: _compile(rule) for rule in self.rules}

    def evaluate(self, text: str, mentioned: set[str], profile: Profile | None = None) -> list[RedFlagMatch]:
        """Rules that fire, most severe first. ``mentioned``: non-negated entity ids so far."""
        profile = profile or Profile()
        squashed = re.sub(r"\s+", "", text or "")
        matches = []
        for rule in self.rules:
            for pattern, regexes in self._compiled[rule.id]:
                evidence = self._pattern_evidence(pattern, regexes, squashed, mentioned, profile)
                if evidence is not None:
                    matches.append(RedFlagMatch(rule, evidence))
                    break
        matches.sort(key=lambda m: -_LEVEL_ORDER[m.level])
        return matches

    @staticmethod
    def _pattern_evidence(pattern, regexes, squashed, mentioned, profile) -> tuple[str, ...] | None:
        evidence: list[str] = []
        if pattern.all_of:
            if not all(i in mentioned for i in pattern.all_of):
                return None
            evidence += pattern.all_of
        if pattern.any_of:
            hits = [i for i in pattern.any_of if i in mentioned]
            if not hits:
                return None
            evidence += hits
        if regexes:
            text_hit = None
            for rx in regexes:
                for m in rx.finditer(squashed):
                    if not _NEGATION_AFTER.match(squashed[m.end() :]):
                        text_hit = m.group(0)
                        break
                if text_hit:
                    break
            if text_hit is None:
                return None
            evidence.append(text_hit)
        if pattern.age_months_max is not None:
            months = profile.age_in_months()
            if months is None or months > pattern.age_months_max:
                return None
        if pattern.age_years_min is not None:
            if profile.age_years is None or profile.age_years < pattern.age_years_min:
                return None
        if pattern.pregnant is not None and profile.pregnant is not pattern.pregnant:
            return None
        return tuple(evidence)


if __name__ == "__main__":  # python -m kmed.agent.red_flags "메시지" ["다음 메시지" …]
    import sys

    from kmed.agent.profile import extract_profile
    from kmed.data.kb import load_kb_or_fail
    from kmed.kg.linker import EntityLinker

    kb = load_kb_or_fail()
    linker, engine = EntityLinker.from_kb(kb), RedFlagEngine(kb)
    mentioned: set[str] = set()
    profile = Profile()
    for message in sys.argv[1:]:
        mentions = linker.link(message)
        mentioned |= {m.id for m in mentions if not m.negated}
        profile.merge(extract_profile(message, mentions))
        print(f"> {message}")
        print("  entities:", [(m.id, m.surface, "negated" if m.negated else "") for m in mentions])
        print("  profile:", profile.to_dict())
        for match in engine.evaluate(message, mentioned, profile):
            print(f"  FIRES {match.rule.id} ({match.level}) evidence={match.evidence}")
