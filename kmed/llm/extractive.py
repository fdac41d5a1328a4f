"""The default generator: composes an answer only from retrieved sentences, each with its [n].

No weights, no sampling: the same question and context give the same answer. Sentences are chosen
by the question's intent (which sections answer it), by overlap with the question's content words
(character bigrams, and its one-syllable nouns such as 술 or 눈),
and by passage rank, without near-duplicates; they are grouped into short parts such as
요약 / 가능한 원인 / 집에서 할 수 있는 일 / 병원에 가야 할 때. Part headings carry no medical claim.
"""

from __future__ import annotations

from collections.abc import Iterator

from kmed.llm.base import ContextPassage, GenerationRequest, GenerationResult, Generator
from kmed.text_ko import bigrams, leans_on_previous, overlap, passage_sentences, word_initials

# Which passage sections answer which intent, best first.
INTENT_SECTIONS: dict[str, list[str]] = {
    "definition": ["overview", "causes", "symptoms"],
    "symptoms": ["symptoms", "when_to_see_doctor", "overview"],
    "causes": ["causes", "overview"],
    "diagnosis": ["diagnosis", "overview"],
    "treatment": ["treatment", "self_care", "overview"],
    "self_care": ["self_care", "prevention", "treatment"],
    "prevention": ["prevention", "self_care"],
    "when_to_see": ["when_to_see_doctor", "kg_red_flags", "symptoms"],
    "drug": ["dosage", "overview", "cautions", "interactions", "kg_interactions", "kg_contraindications", "side_effects"],
    "symptom_report": ["kg_candidate", "overview", "self_care", "when_to_see_doctor"],
    "general": ["overview", "symptoms", "treatment", "self_care", "when_to_see_doctor"],
}
PART_OF_SECTION = {
    "kg_candidate": "가능한 원인",
    "causes": "가능한 원인",
    "self_care": "집에서 할 수 있는 일",
    "prevention": "집에서 할 수 있는 일",
    "when_to_see_doctor": "병원에 가야 할 때",
    "kg_red_flags": "병원에 가야 할 때",
    "cautions": "주의할 점",
    "interactions": "주의할 점",
    "kg_interactions": "주의할 점",
    "kg_contraindications": "주의할 점",
    "side_effects": "주의할 점",
}
PART_ORDER = ["요약", "가능한 원인", "집에서 할 수 있는 일", "주의할 점", "병원에 가야 할 때"]
MAX_SENTENCES = 7
NOT_QUOTABLE = {"lay_terms"}  # retrieval aids, not statements to quote
NOT_QUOTABLE_TYPES = {"department", "test"}  # descriptions of departments/tests do not answer a question
MIN_RELEVANCE = 0.15  # share of the question's bigrams a sentence must contain when its passage is off-focus

class ExtractiveGenerator(Generator):
    name = "extractive"

    def __init__(self, max_sentences: int = MAX_SENTENCES, context_passages: int | None = None) -> None:
        self.max_sentences = max_sentences  # fewer: shorter answers (the SFT targets use 4)
        self.context_passages = context_passages  # None: the agent's default; SFT data uses a model's

    def compose(self, request: GenerationRequest) -> list[tuple[str, list[tuple[str, int]]]]:
        """Parts in reading order: (heading, [(sentence, citation number), …])."""
        intent = request.intent or "general"
        preferred = INTENT_SECTIONS.get(intent, INTENT_SECTIONS["general"])
        question_grams = bigrams(request.question)
        keywords = set(request.keywords)
        asked = max(1, len(question_grams) + len(keywords))
        candidates = []
        for rank, passage in enumerate(request.context):
            section = passage.metadata.get("section", "")
            if section in NOT_QUOTABLE or passage.metadata.get("entity_type") in NOT_QUOTABLE_TYPES:
                continue
            about = (passage.metadata.get("entity_ids") or [None])[0]
            # Context a caller supplies without entity metadata is the grounding by definition; retrieved
            # passages (which carry entity ids) must be about a focus entity or earn their place by relevance.
            on_focus = about is None or (bool(request.focus_entities) and about in request.focus_entities)
            section_bonus = (len(preferred) - preferred.index(section)) / len(preferred) if section in preferred else 0.0
            for position, sentence in enumerate(passage_sentences(passage.text, passage.metadata.get("sentence_ends"))):
                if position and leans_on_previous(sentence):
                    continue  # it needs the sentence before it, which the answer may not quote
                shared_grams = len(bigrams(sentence) & question_grams)
                if not on_focus and shared_grams / max(1, len(question_grams)) < MIN_RELEVANCE:
                    continue  # a one-syllable noun alone (물, 열) is too common to bring in an off-focus passage
                relevance = (shared_grams + len(keywords & word_initials(sentence))) / asked
                score = 1.2 * section_bonus + relevance + 0.6 / (1 + rank) + 0.15 / (1 + position)
                candidates.append((score, rank, position, sentence, passage))
        candidates.sort(key=lambda c: (-c[0], c[1], c[2]))
        chosen: list[tuple[str, ContextPassage, int]] = []
        for score, rank, position, sentence, passage in candidates:
            if len(chosen) >= self.max_sentences or score < 0.35:
                break
            if any(overlap(sentence, other) > 0.6 for other, _, _ in chosen):
                continue
            chosen.append((sentence, passage, rank * 100 + position))
        parts: dict[str, list[tuple[str, int, int]]] = {}
        for sentence, passage, order in chosen:
            heading = PART_OF_SECTION.get(passage.metadata.get("section", ""), "요약")
            if intent in ("drug", "definition", "diagnosis", "causes", "treatment", "symptoms") and heading != "병원에 가야 할 때":
                heading = "요약" if heading not in ("주의할 점",) else heading
            parts.setdefault(heading, []).append((sentence, passage.number, order))
        return [
            (heading, [(s, n) for s, n, _ in sorted(parts[heading], key=lambda item: item[2])])
            for heading in PART_ORDER
            if heading in parts
        ]

    def render(self, parts) -> str:
        lines = []
        for heading, sentences in parts:
            lines.append(f"■ {heading}")
            lines.extend(f"- {sentence} [{number}]" for sentence, number in sentences)
        return "\n".join(lines)

    def generate(self, request: GenerationRequest) -> GenerationResult:
        text = self.render(self.compose(request))
        return GenerationResult(text=text, ttft_s=0.0, total_s=0.0, metadata={"generator": self.name})

    def stream(self, request: GenerationRequest) -> Iterator[str]:
        yield from self.generate(request).text.splitlines(keepends=True)
