"""Answering a turn no policy check took: retrieve, generate from numbered context, verify, assemble.

    yield from answer(turn)        # ("token", text)… then returns the Reply

The generator (extractive by default, or a model) writes from the retrieved passages; the output
guard keeps only whole sentences its citations support; drug-safety facts from the KG that apply
to this person, the departments and the disclaimer are added after.
"""

from __future__ import annotations

import re
import time

from kmed.agent import texts
from kmed.agent.output_guard import drug_safety_facts, verify_answer
from kmed.agent.policy import QUESTION_INTENTS, Turn, departments_for, is_report
from kmed.agent.reply import Citation, Reply, Triage
from kmed.llm.base import ContextPassage, GenerationRequest
from kmed.retrieval.passages import Hit
from kmed.text_ko import CITATION

CONTEXT_PASSAGES = 6
# A message the classifier hears as the person's own (or a family member's) trouble this surely is
# triaged "routine" (see a doctor in the usual way) even when no rule or regex recognised a report and no
# symptom was linked ("기저귀 발진이 엉덩이 전체로 번졌어요 7개월 아기요"). It changes the level only: the
# reply is still a direct answer, never a clarifying question. Chosen on the dev split only (pass /
# over-triage from 0.737 / 0.093: 0.5 gives 0.760 / 0.100, 0.7 gives 0.759 / 0.093, 0.9 gives 0.750 / 0.093).
REPORT_INTENT_CONFIDENCE = 0.7
_INTENT_RULES = [
    ("drug", re.compile(r"(먹어도|복용|용량|몇\s*(알|정|mg)|최대|같이\s*먹|함께\s*먹|부작용|약\s*(을|은|이)?\s*(먹|써|뭐)|dose)")),
    ("prevention", re.compile(r"(예방|백신|접종)")),
    ("diagnosis", re.compile(r"(진단|기준|수치|검사)")),
    ("causes", re.compile(r"(원인|왜\s*(생기|그런|나요))")),
    ("self_care", re.compile(r"(집에서|자가|관리|음식|식단|운동|생활\s*습관|도움이\s*되)")),
    ("treatment", re.compile(r"(치료|낫|고치|수술)")),
    ("when_to_see", re.compile(r"(병원에?\s*(가|가야)|언제\s*(병원|가)|응급실\s*(가|가야))")),
    ("symptoms", re.compile(r"증상")),
    ("definition", re.compile(r"(뭐예요|뭔가요|무엇|이란|란\s*뭐|어떤\s*병|what\s+is)", re.IGNORECASE)),
]
# The classifier's intent, when the rules name none, picks the sections that answer it.
_CLASSIFIER_INTENT = {"self_care_question": "self_care", "drug_question": "drug", "info_question": "definition",
                      "misinformation": "general"}


def detect_intent(turn: Turn, report: bool) -> str:
    """Which sections answer the message: rules on its words first, then the classifier's intent."""
    if report:
        return "symptom_report"
    for intent, pattern in _INTENT_RULES:
        if pattern.search(turn.text):
            return intent
    if any(m.type == "drug" for m in turn.mentions):
        return "drug"
    if turn.intent_probs:
        best = max(turn.intent_probs, key=turn.intent_probs.get)
        return _CLASSIFIER_INTENT.get(best, "general")
    return "general"


def _retrieve(turn: Turn, intent: str) -> list[Hit]:
    """Search with the turn's analysed query (no Kiwi here); a symptom report adds the session's symptoms."""
    a, state = turn.assistant, turn.state
    query = turn.query if turn.query is not None else a.retriever.analyse(turn.text, turn.mentions)
    focus = [m.id for m in turn.mentions if not m.negated and m.type in ("disease", "drug")]
    if focus and intent not in ("symptom_report", "general"):
        hits = a.retriever.search(query, k=context_size(a), filters={"entity": focus})
        if hits:
            return hits
    if intent == "symptom_report":
        from kmed.kg.linker import Mention

        earlier = [a.retriever.queries.name(i) for i in state.symptoms()]
        known = {m.id for m in turn.mentions}
        extra = [Mention(i, a.retriever.queries.name(i), "symptom", 0, 0, "", False)
                 for i in state.symptoms() if i not in known]
        query = query.widen(earlier, extra, a.retriever.analyser)
    return a.retriever.search(query, k=context_size(a))


def context_size(assistant) -> int:
    """The passages this turn numbers: the generator's own ``context_passages``, else ``CONTEXT_PASSAGES``."""
    return getattr(assistant.generator, "context_passages", None) or CONTEXT_PASSAGES


# One-syllable nouns that place or time something ("몇 시간 안에", "그 중") rather than name it.
_POSITION_NOUNS = frozenset("안밖앞뒤옆중쪽때날번곳")


def _short_nouns(turn: Turn) -> list[str]:
    """The turn's one-syllable Hangul nouns as Kiwi read them (술, 눈, 열, 뱀), in order, once each."""
    nouns = turn.query.nouns if turn.query is not None else ()
    return list(dict.fromkeys(n for n in nouns if len(n) == 1 and "가" <= n <= "힣" and n not in _POSITION_NOUNS))


def answer(turn: Turn):
    """Generator: yields ("token", text) for model generators; returns the Reply."""
    a, state = turn.assistant, turn.state
    report = is_report(turn)
    personal = report or turn.intent_is("symptom_report", confidence=REPORT_INTENT_CONFIDENCE)
    intent = detect_intent(turn, report)
    t0 = time.perf_counter()
    hits = _retrieve(turn, intent)
    context = [ContextPassage(i + 1, h.title, h.text, h.metadata.get("source", ""), h.id, h.metadata) for i, h in enumerate(hits)]
    drugs = [m.id for m in turn.mentions if m.type == "drug" and not m.negated]
    safety = drug_safety_facts(drugs, state.profile, a.retriever.queries)
    t1 = time.perf_counter()
    candidates = [h.metadata["entity_ids"][0] for h in hits if h.metadata.get("section") == "kg_candidate"]
    focus = [*(m.id for m in turn.mentions if not m.negated and m.type in ("disease", "drug")), *candidates[:3]]
    request = GenerationRequest(question=turn.text, context=context, history=state.history[-6:], intent=intent,
                                profile=state.profile.to_dict(), focus_entities=focus, keywords=_short_nouns(turn))
    pieces = []
    for piece in a.generator.stream(request):
        pieces.append(piece)
        if a.generator.name != "extractive":
            yield "token", piece
    t2 = time.perf_counter()
    # Passages a model generator had to cut from its prompt cannot support a citation.
    last = getattr(a.generator, "last_result", None)
    dropped = set((last.metadata.get("dropped_context") or []) if last is not None else [])
    usable = [p for p in context if p.number not in dropped]
    verified, stats = verify_answer("".join(pieces), usable, strict=a.generator.name != "extractive")
    departments = departments_for(turn, candidates[:2])
    if not departments:  # nothing linked: fall back to the departments of what was found
        depts = [d for h in hits[:3] for d in (h.metadata.get("departments") or [])[:1]]
        departments = list(dict.fromkeys(a.retriever.queries.name(d) for d in depts))[:2]
    body, citations = renumber(verified, usable)
    symptom_names = ", ".join(a.retriever.queries.name(i) for i in state.symptoms()[:4])
    timings = {"retrieve_ms": round((t1 - t0) * 1000, 2), "generate_ms": round((t2 - t1) * 1000, 2)}
    if not body:
        text = texts.NOTHING_FOUND.format(departments=", ".join(departments) or texts.DEFAULT_DEPARTMENT)
        if report:  # still say what was understood, so the person can correct it
            text = texts.UNDERSTOOD.format(symptoms=symptom_names) + " " + text
        triage = Triage("routine" if personal else "info", [texts.NOTHING_FOUND_REASON])
        return Reply(answer=text, triage=triage, entities=turn.entities, departments=departments, kind="answer",
                     notices=turn.notices, timings=timings, verification=stats)
    lines = []
    if report:
        lines.append(texts.REPORT_INTRO.format(symptoms=symptom_names))
    elif turn.intent_is("misinformation") and not turn.intent_is(*[i for i in QUESTION_INTENTS if i != "misinformation"]):
        lines.append(texts.MYTH_INTRO)
    lines.append(body)
    if safety:
        lines.append("■ " + texts.DRUG_SAFETY_HEADING)
        lines.extend(f"- ⚠ {warning}" for _, warning, _ in safety)
    if departments:
        lines.append(texts.DEPARTMENTS_HEADING)
        lines.append("- " + texts.DEPARTMENT_LINE.format(departments=", ".join(departments)))
    lines.append(texts.DISCLAIMER)
    triage = Triage("routine", [texts.REPORT_REASON]) if personal else Triage("info", [texts.INFO_REASON])
    return Reply(answer="\n".join(lines), citations=citations, triage=triage, entities=turn.entities,
                 departments=departments, kind="answer", notices=turn.notices, timings=timings, verification=stats)


def renumber(text: str, context: list[ContextPassage]) -> tuple[str, list[Citation]]:
    """Number citations 1..m in order of first use, and list exactly those passages."""
    order: dict[int, int] = {}
    for match in CITATION.finditer(text):
        for n in re.split(r"\s*,\s*", match.group(1)):
            order.setdefault(int(n), len(order) + 1)
    by_number = {p.number: p for p in context}

    def repl(match: re.Match) -> str:
        return " " + "".join(f"[{order[int(n)]}]" for n in re.split(r"\s*,\s*", match.group(1)))

    body = CITATION.sub(repl, text)
    citations = [
        Citation(by_number[old].passage_id, by_number[old].title, by_number[old].source, by_number[old].text[:160])
        for old, _ in sorted(order.items(), key=lambda item: item[1])
    ]
    return body, citations
