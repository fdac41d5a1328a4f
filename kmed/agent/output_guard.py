"""Output guardrails: every medical sentence must be a whole sentence supported by the passage it cites.

Works for any generator. A line is cut into claims at its citation markers ("… [2]"); text with
no marker is cut by the one sentence splitter (``kmed.text_ko``). A claim citing ``[n]`` is kept
when ``n`` is in the context and:

- ``quoted`` (the extractive composer): the claim is exactly one whole sentence of passage ``n``,
  as the splitter cut it. A fragment ("항생제가 필요") is never a sentence of its passage, so it
  is dropped and counted in ``stats["fragments"]``;
- otherwise (model-written text): the claim closes with a final ending (``ends_with_final_ending``:
  a period after a cut clause is not enough), its content overlaps passage ``n`` enough (character
  bigrams, particle-tolerant), and it keeps the polarity of the passage sentence it is closest
  to (``is_negated``): "항생제가 필요해요" citing "…항생제가 필요 없어요." is dropped.

A medical claim left with no valid citation is dropped; ``strict`` treats every claim as medical.
A sentence said a second time, word for word, is dropped and counted in ``stats["repeated"]``: a
small model loops, and each copy would otherwise pass as supported.
"""

from __future__ import annotations

import re

from kmed.agent.guardrails import looks_medical
from kmed.llm.base import ContextPassage
from kmed.text_ko import (
    CITATION,
    citation_numbers,
    ends_with_final_ending,
    is_negated,
    is_whole_sentence,
    overlap,
    passage_sentences,
    split_sentences,
)

SUPPORT_THRESHOLD = 0.5
# A claim ends at a run of citation markers, with the sentence punctuation a model may put after it.
_CLAIM = re.compile(r"(.+?(?:\s*\[\d+(?:\s*,\s*\d+)*\])+[.!?]?)")


def claims_of(body: str) -> list[str]:
    """Claims of one answer line: each cited run of text, then the uncited sentences after the last marker."""
    claims, cursor = [], 0
    for match in _CLAIM.finditer(body):
        claims.append(match.group(1).strip())
        cursor = match.end()
    claims.extend(split_sentences(body[cursor:]))
    return [c for c in claims if c]


def _supports(claim: str, passage: ContextPassage, quoted: bool) -> bool:
    sentences = passage_sentences(passage.text, passage.metadata.get("sentence_ends"))
    if quoted:
        return claim in sentences
    if not ends_with_final_ending(claim) or overlap(claim, passage.text) < SUPPORT_THRESHOLD:
        return False
    closest = max(sentences, key=lambda s: overlap(claim, s), default="")
    return is_negated(claim) == is_negated(closest)


def verify_answer(text: str, context: list[ContextPassage], strict: bool = False, quoted: bool | None = None) -> tuple[str, dict]:
    """Keep supported whole sentences. ``strict`` (model-written text): every claim needs a valid citation.

    ``quoted`` defaults to ``not strict``: the extractive composer quotes, a model paraphrases.
    """
    quoted = (not strict) if quoted is None else quoted
    by_number = {p.number: p for p in context}
    kept_lines: list[str] = []
    stats = {"medical_sentences": 0, "supported": 0, "dropped": 0, "fragments": 0, "repeated": 0, "cited_numbers": []}
    said: set[str] = set()
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("■"):
            kept_lines.append(line)
            continue
        prefix = "- " if stripped.startswith("- ") else ""
        kept_sentences = []
        for raw_claim in claims_of(stripped[len(prefix):]):
            numbers = citation_numbers(raw_claim)
            claim = CITATION.sub("", raw_claim).strip()
            if numbers and raw_claim[-1] in ".!?" and claim[-1:] not in (".", "!", "?"):
                claim += raw_claim[-1]  # "…있어요 [1]." → the period belongs to the sentence
            key = " ".join(claim.split())
            if key in said:
                stats["repeated"] += 1
                continue
            medical = strict or bool(numbers) or looks_medical(claim)
            if not medical:
                said.add(key)
                kept_sentences.append(claim)
                continue
            stats["medical_sentences"] += 1
            if not is_whole_sentence(claim):
                stats["fragments"] += 1
            valid = [n for n in dict.fromkeys(numbers) if n in by_number and _supports(claim, by_number[n], quoted)]
            if not valid:
                stats["dropped"] += 1
                continue
            stats["supported"] += 1
            said.add(key)
            stats["cited_numbers"].extend(valid)
            kept_sentences.append(claim + " " + "".join(f"[{n}]" for n in valid))
        if kept_sentences:
            kept_lines.append(prefix + " ".join(kept_sentences))
    # Drop headings left with nothing under them.
    cleaned: list[str] = []
    for i, line in enumerate(kept_lines):
        following = [rest for rest in kept_lines[i + 1 :] if rest.strip()]  # blank lines do not count as content
        if line.strip().startswith("■") and (not following or following[0].strip().startswith("■")):
            continue
        cleaned.append(line)
    stats["cited_numbers"] = sorted(set(stats["cited_numbers"]))
    return "\n".join(cleaned).strip(), stats


def drug_safety_facts(drug_ids: list[str], profile, queries) -> list[tuple[str, str, dict]]:
    """(drug id, Korean warning, edge data) for KG facts that apply to this person."""
    warnings = []
    applies = profile.populations() | set(profile.conditions)  # kmed.populations: ages, pregnancy, breastfeeding
    for drug in dict.fromkeys(drug_ids):
        for target, data in queries.contraindications_of(drug):
            if target in applies:
                level = "금기" if data.get("level") == "contraindicated" else "주의"
                warnings.append((drug, f"{queries.name(drug)}: {queries.name(target)} {level}. {data.get('note', '')}".strip(), data))
        for other, data in queries.interactions_of(drug):
            if other in profile.medications:
                warnings.append((drug, f"{queries.name(drug)} + {queries.name(other)}: {data.get('note', '')}".strip(), data))
    return warnings
