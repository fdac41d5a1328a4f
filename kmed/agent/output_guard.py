"""Output guardrails: every medical sentence must be supported by the passage it cites.

Works for any generator. A sentence citing ``[n]`` is kept when ``n`` is in the context and the
sentence's content overlaps the passage enough (character bigrams, particle-tolerant); otherwise
the citation is removed, and a medical sentence left with no valid citation is dropped.
"""

from __future__ import annotations

import re

from kmed.agent.guardrails import _MEDICAL_HINT
from kmed.llm.base import ContextPassage
from kmed.llm.extractive import overlap, split_sentences

SUPPORT_THRESHOLD = 0.5
_CITE = re.compile(r"\s*\[(\d+)\]")


def verify_answer(text: str, context: list[ContextPassage], strict: bool = False) -> tuple[str, dict]:
    """Keep supported sentences. ``strict`` (model-written text): every sentence needs a valid citation."""
    by_number = {p.number: p for p in context}
    kept_lines: list[str] = []
    stats = {"medical_sentences": 0, "supported": 0, "dropped": 0, "cited_numbers": []}
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("■"):
            kept_lines.append(line)
            continue
        prefix = "- " if stripped.startswith("- ") else ""
        body = stripped[len(prefix):]
        kept_sentences = []
        for sentence in split_sentences(body) or [body]:
            numbers = [int(n) for n in _CITE.findall(sentence)]
            claim = _CITE.sub("", sentence).strip()
            medical = strict or bool(numbers) or bool(_MEDICAL_HINT.search(claim))
            if not medical:
                kept_sentences.append(claim)
                continue
            stats["medical_sentences"] += 1
            valid = [n for n in dict.fromkeys(numbers) if n in by_number and overlap(claim, by_number[n].text) >= SUPPORT_THRESHOLD]
            if not valid:
                stats["dropped"] += 1
                continue
            stats["supported"] += 1
            stats["cited_numbers"].extend(valid)
            kept_sentences.append(claim + " " + "".join(f"[{n}]" for n in valid))
        if kept_sentences:
            kept_lines.append(prefix + " ".join(kept_sentences))
    # Drop headings left with nothing under them.
    cleaned: list[str] = []
    for i, line in enumerate(kept_lines):
        if line.strip().startswith("■") and (i + 1 >= len(kept_lines) or kept_lines[i + 1].strip().startswith("■")):
            continue
        cleaned.append(line)
    stats["cited_numbers"] = sorted(set(stats["cited_numbers"]))
    return "\n".join(cleaned).strip(), stats


def drug_safety_facts(drug_ids: list[str], profile, queries) -> list[tuple[str, str, dict]]:
    """(drug id, Korean warning, edge data) for KG facts that apply to this person."""
    warnings = []
    months = profile.age_in_months()
    applies = set()
    if profile.pregnant:
        applies.add("pregnancy")
    if months is not None and months < 24:
        applies.add("infants")
    if months is not None and months < 12 * 12:
        applies.add("children")
    if profile.age_years is not None and profile.age_years >= 65:
        applies.add("elderly")
    applies.update(profile.conditions)
    for drug in dict.fromkeys(drug_ids):
        for target, data in queries.contraindications_of(drug):
            if target in applies:
                level = "금기" if data.get("level") == "contraindicated" else "주의"
                warnings.append((drug, f"{queries.name(drug)}: {queries.name(target)} {level}. {data.get('note', '')}".strip(), data))
        for other, data in queries.interactions_of(drug):
            if other in profile.medications:
                warnings.append((drug, f"{queries.name(drug)} + {queries.name(other)}: {data.get('note', '')}".strip(), data))
    return warnings
