"""One multi-turn consultation: safety first, grounded second, short and kind throughout.

A turn: clean and redact input → link entities and update what we know → red flags (rules, no
model) → refuse injection/harmful/out-of-scope → maybe ask one clarifying question → retrieve →
generate from numbered context → verify every cited sentence → add drug-safety warnings,
departments and the disclaimer. An emergency found at any point is stated first and never
downgraded by a later step. An exception inside a turn returns an apology and keeps the session.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from kmed.agent import guardrails as g
from kmed.agent import texts
from kmed.agent.output_guard import drug_safety_facts, verify_answer
from kmed.agent.profile import Profile, extract_profile
from kmed.agent.red_flags import RedFlagMatch
from kmed.agent.reply import Citation, Reply, Triage
from kmed.llm.base import ContextPassage, GenerationRequest
from kmed.retrieval.passages import Hit

log = logging.getLogger(__name__)
CONTEXT_PASSAGES = 6
LEVEL_RANK = {"info": 0, "self_care": 1, "routine": 1, "urgent": 2, "emergency": 3}
_CITE = re.compile(r"\[(\d+)\]")

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


def detect_intent(text: str, report: bool, mentions) -> str:
    if report:
        return "symptom_report"
    for intent, pattern in _INTENT_RULES:
        if pattern.search(text):
            return intent
    if any(m.type == "drug" for m in mentions):
        return "drug"
    return "general"


@dataclass
class SessionState:
    mentioned: dict[str, str] = field(default_factory=dict)  # non-negated entity id -> type, first mention first
    negated: set[str] = field(default_factory=set)
    profile: Profile = field(default_factory=Profile)
    clarify_streak: int = 0
    flags: list[RedFlagMatch] = field(default_factory=list)  # every red flag raised so far
    history: list[dict] = field(default_factory=list)  # redacted text only

    def symptoms(self) -> list[str]:
        return [i for i, t in self.mentioned.items() if t == "symptom"]


class Session:
    def __init__(self, assistant):
        self.assistant = assistant
        self.state = SessionState()
        self.last_reply: Reply | None = None

    def reset(self) -> None:
        self.state = SessionState()
        self.last_reply = None

    def ask(self, message: str) -> Reply:
        reply = None
        for event, value in self.stream(message):
            if event == "reply":
                reply = value
        return reply

    def stream(self, message: str) -> Iterator[tuple[str, object]]:
        """Yields ("token", text) while generating, then ("reply", Reply)."""
        started = time.perf_counter()
        try:
            reply = yield from self._turn(message)
        except Exception:  # noqa: BLE001 - a crash in one turn must not end the consultation
            log.exception("turn failed")
            reply = Reply(answer=texts.INTERNAL_ERROR, kind="error")
        self._keep_escalation(reply)
        reply.timings["total_ms"] = round((time.perf_counter() - started) * 1000, 2)
        self.last_reply = reply
        self.state.history.append({"role": "assistant", "content": reply.answer})
        yield "reply", reply

    def _turn(self, message: str):
        a = self.assistant
        clean = g.clean_input(message)
        text = clean.text
        notices = []
        if clean.truncated:
            notices.append(texts.TRUNCATED.format(limit=g.MAX_INPUT_CHARS))
        if clean.pii_kinds:
            notices.append(texts.PII_REDACTED)
        if not re.search(r"[가-힣A-Za-z0-9]", text):
            return Reply(answer=texts.EMPTY_INPUT, kind="empty", notices=notices)
        self.state.history.append({"role": "user", "content": text})

        mentions = a.linker.link(text)
        for m in mentions:
            if m.negated:
                self.state.negated.add(m.id)
                self.state.mentioned.pop(m.id, None)
            else:
                self.state.mentioned.setdefault(m.id, m.type)
                self.state.negated.discard(m.id)
        self.state.profile.merge(extract_profile(text, mentions))
        hypothetical = g.is_hypothetical(text) or g.is_past_reference_question(text)
        information = g.is_information_question(text)
        entities = [{"id": m.id, "name": m.name, "type": m.type} for m in _unique(mentions) if not m.negated]

        # 0. Requests to harm others or to obtain drugs illegally are refused before anything
        # else, so their words ("몰래 먹여서 기절시킬") are never read as the person's own symptoms.
        harmful = g.harmful_category(text)
        if harmful in g.REFUSE_FIRST:
            triage = Triage("info", [texts.HARMFUL_REASON[harmful]])
            return Reply(answer=texts.HARMFUL[harmful], refused=True, kind="refusal", triage=triage, notices=notices)

        # 1. Safety first: red flags from rules, over everything said so far.
        new_flags = [] if (hypothetical or information) else a.red_flags.evaluate(text, set(self.state.mentioned), self.state.profile)
        for flag in new_flags:
            if all(f.rule.id != flag.rule.id for f in self.state.flags):
                self.state.flags.append(flag)
        self_harm = g.is_self_harm(text) and not information
        if any(f.rule.category == "self_harm" for f in new_flags) or self_harm or g.harmful_category(text) == "self_harm_method":
            return self._reply_self_harm(entities, notices, new_flags)
        if new_flags:
            return self._reply_emergency(new_flags, entities, notices)

        # 2. Greetings, then refusals.
        if g.is_greeting(text):
            return Reply(answer=texts.GREETING, kind="greeting", notices=notices)
        if g.is_prompt_injection(text):
            return Reply(answer=texts.INJECTION, refused=True, kind="refusal", entities=entities, notices=notices)
        if harmful:
            triage = Triage("info", [texts.HARMFUL_REASON[harmful]], ["109", "1577-0199"] if harmful == "lethal_dose" else [])
            return Reply(answer=texts.HARMFUL[harmful], refused=True, kind="refusal", triage=triage, entities=entities, notices=notices)
        in_consultation = bool(self.state.mentioned) or (self.last_reply is not None and self.last_reply.kind in ("clarify", "answer", "emergency"))
        if not in_consultation and g.is_out_of_scope(text, bool(mentions)):
            return Reply(answer=texts.OUT_OF_SCOPE, refused=True, kind="refusal", notices=notices)

        # 3. Clarify a vague symptom report (at most twice in a row), else answer.
        answering_us = self.last_reply is not None and self.last_reply.kind == "clarify"
        personal = not information and not hypothetical
        report = personal and (
            (bool(self.state.symptoms()) and (any(m.type == "symptom" for m in mentions) or answering_us
                                               or not any(m.type in ("disease", "drug") for m in mentions)))
            or (g.sounds_like_report(text) and not any(m.type == "drug" for m in mentions)))
        question = self._clarifying_question(report)
        if question:
            self.state.clarify_streak += 1
            return Reply(answer=question, kind="clarify", triage=Triage("routine", [texts.NEED_MORE_INFO]),
                         entities=entities, departments=self._departments(mentions), notices=notices)
        self.state.clarify_streak = 0
        intent = detect_intent(text, report, mentions)
        return (yield from self._answer(text, intent, mentions, entities, notices, information or hypothetical))

    def _keep_escalation(self, reply: Reply) -> None:
        """An emergency or urgent flag raised earlier in the session is never downgraded later."""
        if not self.state.flags or reply.refused or reply.kind == "empty":
            return
        worst = max(self.state.flags, key=lambda f: LEVEL_RANK[f.level])
        if LEVEL_RANK[reply.triage.level] >= LEVEL_RANK[worst.level]:
            return
        reply.triage.level = worst.level
        reply.triage.reasons = list(dict.fromkeys([*reply.triage.reasons, worst.rule.name]))
        reply.triage.hotlines = list(dict.fromkeys([*reply.triage.hotlines, *worst.rule.hotlines]))
        reminder = texts.STILL_EMERGENCY if worst.level == "emergency" else texts.STILL_URGENT
        reply.answer = reminder.format(reason=worst.rule.name) + "\n" + reply.answer

    def _clarifying_question(self, report: bool) -> str | None:
        if not report or self.state.clarify_streak >= 2:
            return None
        profile = self.state.profile
        if profile.duration is None and len(self.state.symptoms()) <= 1 and not profile.severe:
            return texts.ASK_DURATION
        if profile.is_child and profile.age_in_months() is None and "sym.fever" in self.state.mentioned:
            return texts.ASK_CHILD_AGE
        return None

    def _departments(self, mentions, candidates=()) -> list[str]:
        """Departments of the likely conditions and the symptoms; children and pregnancy come first."""
        q = self.assistant.retriever.queries
        symptoms = [i for i in self.state.symptoms()]
        ids = [*candidates, *(m.id for m in mentions if not m.negated and m.type in ("disease", "symptom")), *symptoms]
        names = []
        profile = self.state.profile
        months = profile.age_in_months()
        if profile.is_child or (months is not None and months < 15 * 12):
            names.append(texts.PEDIATRICS)
        if profile.pregnant:
            names.append(texts.OBSTETRICS)
        for entity_id in ids:
            names.extend(q.name(d) for d in q.departments_of(entity_id)[:1])
        return list(dict.fromkeys(names))[:3]

    def _retrieve(self, text: str, intent: str, mentions) -> list[Hit]:
        a = self.assistant
        earlier = [a.retriever.queries.name(i) for i in self.state.symptoms()]
        query = " ".join([text, *earlier]) if intent == "symptom_report" else text
        focus = [m.id for m in mentions if not m.negated and m.type in ("disease", "drug")]
        if focus and intent not in ("symptom_report", "general"):
            hits = a.retriever.search(query, k=CONTEXT_PASSAGES, filters={"entity": focus})
            if hits:
                return hits
        session_mentions = mentions
        if intent == "symptom_report":
            extra = [i for i in self.state.symptoms() if i not in {m.id for m in mentions}]
            session_mentions = [*mentions, *(_pseudo_mention(i, a.retriever.queries.name(i)) for i in extra)]
        return a.retriever.search(query, k=CONTEXT_PASSAGES, mentions=session_mentions)

    def _answer(self, text, intent, mentions, entities, notices, informational):
        a = self.assistant
        t0 = time.perf_counter()
        hits = self._retrieve(text, intent, mentions)
        context = [ContextPassage(i + 1, h.title, h.text, h.metadata.get("source", ""), h.id, h.metadata) for i, h in enumerate(hits)]
        drugs = [m.id for m in mentions if m.type == "drug" and not m.negated]
        safety = drug_safety_facts(drugs, self.state.profile, a.retriever.queries)
        t1 = time.perf_counter()
        candidates = [h.metadata["entity_ids"][0] for h in hits if h.metadata.get("section") == "kg_candidate"]
        focus = [*(m.id for m in mentions if not m.negated and m.type in ("disease", "drug")), *candidates[:3]]
        request = GenerationRequest(question=text, context=context, history=self.state.history[-6:], intent=intent,
                                    profile=self.state.profile.to_dict(), focus_entities=focus)
        pieces = []
        for piece in a.generator.stream(request):
            pieces.append(piece)
            if a.generator.name != "extractive":
                yield "token", piece
        raw = "".join(pieces)
        t2 = time.perf_counter()
        # Passages a model generator had to cut from its prompt cannot support a citation.
        last = getattr(a.generator, "last_result", None)
        dropped = set((last.metadata.get("dropped_context") or []) if last is not None else [])
        usable = [p for p in context if p.number not in dropped]
        verified, stats = verify_answer(raw, usable, strict=a.generator.name != "extractive")
        report = intent == "symptom_report"
        departments = self._departments(mentions, candidates[:2])
        if not departments and report:  # nothing linked: fall back to the departments of what was found
            q = a.retriever.queries
            depts = [d for h in hits[:3] for d in (h.metadata.get("departments") or [])[:1]]
            departments = list(dict.fromkeys(q.name(d) for d in depts))[:2]
        body, citations = _renumber(verified, usable)
        if not body:
            answer = texts.NOTHING_FOUND.format(departments=", ".join(departments) or texts.DEFAULT_DEPARTMENT)
            if report:  # still say what was understood, so the person can correct it
                names = ", ".join(a.retriever.queries.name(i) for i in self.state.symptoms()[:4])
                answer = texts.UNDERSTOOD.format(symptoms=names) + " " + answer
            triage = Triage("routine" if report else "info", [texts.NOTHING_FOUND_REASON])
            return Reply(answer=answer, triage=triage, entities=entities, departments=departments, kind="answer",
                         notices=notices, verification=stats)
        lines = []
        if report:
            names = ", ".join(a.retriever.queries.name(i) for i in self.state.symptoms()[:4])
            lines.append(texts.REPORT_INTRO.format(symptoms=names))
        lines.append(body)
        if safety:
            lines.append("■ " + texts.DRUG_SAFETY_HEADING)
            lines.extend(f"- ⚠ {warning}" for _, warning, _ in safety)
        if departments:
            lines.append("■ 진료과")
            lines.append("- " + texts.DEPARTMENT_LINE.format(departments=", ".join(departments)))
        lines.append(texts.DISCLAIMER)
        asks_about_drug = any(m.type == "drug" for m in mentions)
        level = "routine" if report else ("self_care" if intent == "self_care" and not asks_about_drug else "info")
        reasons = [texts.REPORT_REASON] if report else [texts.INFO_REASON]
        timings = {"retrieve_ms": round((t1 - t0) * 1000, 2), "generate_ms": round((t2 - t1) * 1000, 2)}
        return Reply(answer="\n".join(lines), citations=citations, triage=Triage(level, reasons), entities=entities,
                     departments=departments, kind="answer", notices=notices, timings=timings, verification=stats)

    def _reply_emergency(self, flags, entities, notices):
        worst = flags[0]
        hotlines = list(dict.fromkeys(h for f in flags for h in f.rule.hotlines))
        citations = [Citation(f.rule.id, f.rule.name, self.assistant.source_names(f.rule.source_ids()), f.rule.reason) for f in flags[:3]]
        lines = [texts.EMERGENCY_BANNER if worst.level == "emergency" else texts.URGENT_BANNER]
        for n, f in enumerate(flags[:3], start=1):
            lines.append(f"- {f.rule.reason} [{n}]")
        lines.append(f"- {worst.rule.action}")
        departments = list(dict.fromkeys(
            self.assistant.retriever.queries.name(d) for f in flags for d in (f.rule.departments or ["dept.emergency_medicine"])))[:3]
        lines.append(texts.DISCLAIMER)
        triage = Triage(worst.level, [f.rule.name for f in flags], hotlines)
        return Reply(answer="\n".join(lines), citations=citations, triage=triage, entities=entities,
                     departments=departments, kind="emergency", notices=notices)

    def _reply_self_harm(self, entities, notices, flags):
        citations = [Citation(f.rule.id, f.rule.name, self.assistant.source_names(f.rule.source_ids()), f.rule.reason)
                     for f in flags if f.rule.category == "self_harm"][:1]
        reasons = [f.rule.name for f in flags] or [texts.SELF_HARM_REASON]
        answer = texts.SELF_HARM + ("" if not citations else " [1]") + "\n" + texts.DISCLAIMER
        return Reply(answer=answer, citations=citations, triage=Triage("emergency", reasons, ["109", "1577-0199", "119"]),
                     entities=entities, departments=["정신건강의학과"], kind="emergency", notices=notices)


def _unique(mentions):
    seen, out = set(), []
    for m in mentions:
        if m.id not in seen:
            seen.add(m.id)
            out.append(m)
    return out


def _pseudo_mention(entity_id: str, name: str):
    from kmed.kg.linker import Mention

    return Mention(entity_id, name, "symptom", 0, 0, name, False)


def _renumber(text: str, context: list[ContextPassage]) -> tuple[str, list[Citation]]:
    """Number citations 1..m in order of first use, and list exactly those passages."""
    order: dict[int, int] = {}
    for match in _CITE.finditer(text):
        order.setdefault(int(match.group(1)), len(order) + 1)
    by_number = {p.number: p for p in context}
    body = _CITE.sub(lambda m: f"[{order[int(m.group(1))]}]", text)
    citations = [
        Citation(by_number[old].passage_id, by_number[old].title, by_number[old].source, by_number[old].text[:160])
        for old, _ in sorted(order.items(), key=lambda item: item[1])
    ]
    return body, citations
