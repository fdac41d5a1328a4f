"""The turn as a declared policy: an ordered list of checks, each ``(turn) -> Reply | None``.

    reply = run_policy(turn) or answer(turn)      # kmed.agent.session

The order below *is* the safety order. Emergencies and self-harm are looked for on every message
first; a refusal can only add a line to an emergency reply, never replace it. After them come
someone hurt or threatened by another person (112, 119, 1366), the greeting, prompt injection,
harmful requests, out-of-scope and the clarifying question. When no
check answers, the turn is answered from retrieved passages (``kmed.agent.answer``).

Every signal a check reads is computed once, in ``analyse``: the linked entities, the profile, the
rules' red flags, the KG's urgent conditions, the classifier's triage and intent, and the harmful
pattern. Each triage layer may only raise the level (``kmed.agent.triage``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from kmed.agent import guardrails as g
from kmed.agent import texts
from kmed.agent.profile import extract_profile
from kmed.agent.reply import Citation, Reply, Triage
from kmed.agent.triage import Escalation, classifier_layer, from_rule, kg_layer, most_severe_first
from kmed.populations import is_pediatric
from kmed.retrieval.query import Query

# Intents of a direct question: answered directly, never with a clarifying question.
QUESTION_INTENTS = ("info_question", "self_care_question", "drug_question", "misinformation")
# Intents that are about health: a message with one of them is never refused as out of scope.
HEALTH_INTENTS = (*QUESTION_INTENTS, "symptom_report", "self_harm", "other_emotional")
# The classifier's intent counts when it is the most probable one and reaches this probability
# (ten intents: 0.1 is chance). Chosen on the dev split only.
INTENT_CONFIDENCE = 0.3
HARMFUL_CONFIDENCE = 0.45
# When the message names a KB disease or drug and the rules find no harm words in it, the classifier
# alone must be this sure before a health question is refused: plain questions such as "로페라미드는
# 어떻게 듣는 약이에요?" were heard as harmful at 0.46-0.65, while harmful requests naming a drug or
# disease score 0.73-0.98 (measured on the SFT writers' questions, never on the evaluation sets).
HARMFUL_NAMED_CONFIDENCE = 0.7
HARM_EMERGENCY_OVERRIDE = 0.5  # a harmful-sounding message the classifier hears as an emergency stays one
SELF_HARM_INTENT_CONFIDENCE = 0.5
QUESTION_OVER_REPORT = 0.5  # a question this clear is information even when it names one's own symptom
HEALTH_EVIDENCE = 0.5  # the classifier's total probability on health intents that keeps a message in scope
_HAS_TEXT = re.compile(r"[가-힣A-Za-z0-9]")


@dataclass
class Turn:
    """Everything the checks read about one message, computed once."""

    text: str
    notices: list[str]
    session: object  # kmed.agent.session.Session: state, assistant, last reply
    query: Query | None = None  # the message analysed once (Kiwi, linker); retrieval reuses it
    mentions: list = field(default_factory=list)
    entities: list[dict] = field(default_factory=list)
    information: bool = False  # a question about a topic, not a report
    hypothetical: bool = False
    harmful: str | None = None
    intent_probs: dict[str, float] = field(default_factory=dict)
    escalations: list[Escalation] = field(default_factory=list)  # this turn's, most severe first

    @property
    def state(self):
        return self.session.state

    @property
    def assistant(self):
        return self.session.assistant

    def intent_is(self, *intents: str, confidence: float = INTENT_CONFIDENCE) -> bool:
        """The classifier's most probable intent is one of ``intents``, with at least ``confidence``."""
        if not self.intent_probs:
            return False
        best = max(self.intent_probs, key=self.intent_probs.get)
        return best in intents and self.intent_probs[best] >= confidence

    def share_of(self, *intents: str) -> float:
        """The classifier's total probability on ``intents`` (0 without a classifier)."""
        return sum(self.intent_probs.get(i, 0.0) for i in intents)

    @property
    def names_disease_or_drug(self) -> bool:
        return any(m.type in ("disease", "drug") and not m.negated for m in self.mentions)

    def heard_harmful(self) -> bool:
        """The classifier hears a harmful request, sure enough for what the message names."""
        confidence = HARMFUL_NAMED_CONFIDENCE if self.names_disease_or_drug else HARMFUL_CONFIDENCE
        return self.intent_is("harmful", confidence=confidence)

    @property
    def direct_question(self) -> bool:
        return self.information or self.intent_is(*QUESTION_INTENTS)


def analyse(session, clean) -> Turn:
    """Link entities, update the session's state and compute every triage signal."""
    a, state, text = session.assistant, session.state, clean.text
    turn = Turn(text=text, notices=_notices(clean), session=session)
    if not _HAS_TEXT.search(text):
        return turn
    state.history.append({"role": "user", "content": text})
    turn.query = a.retriever.analyse(text)
    turn.mentions = list(turn.query.mentions)
    for m in turn.mentions:
        if m.negated:
            state.negated.add(m.id)
            state.mentioned.pop(m.id, None)
        else:
            state.mentioned.setdefault(m.id, m.type)
            state.negated.discard(m.id)
    state.profile.merge(extract_profile(text, turn.mentions))
    turn.hypothetical = g.is_hypothetical(text) or g.is_past_reference_question(text)
    turn.information = g.is_information_question(text)
    turn.harmful = g.harmful_category(text)
    turn.entities = list({m.id: {"id": m.id, "name": m.name, "type": m.type}
                          for m in turn.mentions if not m.negated}.values())  # one per id, first mention's place
    prediction = a.classifier.predict(text) if a.classifier is not None else None
    turn.intent_probs = prediction.intent if prediction else {}

    # A request to harm someone ("몰래 먹여서 기절시킬 약") names the effect it wants, not anyone's state:
    # the rules and the KG do not read it as symptoms unless the classifier also hears an emergency.
    harm_request = ((turn.harmful in g.REFUSE_FIRST or turn.heard_harmful())
                    and (prediction is None or prediction.triage["emergency"] < HARM_EMERGENCY_OVERRIDE))
    # Only what is new this turn escalates the reply itself; what an earlier turn raised is kept by the
    # session (a reminder first, the level never lowered), so a follow-up question still gets its answer.
    escalations: list[Escalation] = []
    raised = {f.rule.id for f in state.flags} | {e.cite_id for e in state.escalations if e.cite_id}
    report = not (turn.hypothetical or turn.information or harm_request)
    if report:  # 1. rules: the floor
        for flag in a.red_flags.evaluate(text, set(state.mentioned), state.profile):
            if flag.rule.id not in raised:
                state.flags.append(flag)
                escalations.append(from_rule(flag.rule))
        # 2. the KG's urgent conditions, over the symptoms of the whole session
        escalations += [e for e in kg_layer(a.kb, a.retriever.queries, state.symptoms()) if e.cite_id not in raised]
    escalations += classifier_layer(a.kb, a.classifier, text, prediction, state.profile, report)  # 3. the learned layer
    turn.escalations = most_severe_first(escalations)
    for e in turn.escalations:
        if e.layer != "rules" and all(x.cite_id != e.cite_id or x.name != e.name for x in state.escalations):
            state.escalations.append(e)
    return turn


def _notices(clean) -> list[str]:
    notices = []
    if clean.truncated:
        notices.append(texts.TRUNCATED.format(limit=g.MAX_INPUT_CHARS))
    if clean.pii_kinds:
        notices.append(texts.PII_REDACTED)
    return notices


# --- the checks, in order ---------------------------------------------------------------------

def check_empty(turn: Turn) -> Reply | None:
    if not _HAS_TEXT.search(turn.text):
        return Reply(answer=texts.EMPTY_INPUT, kind="empty", notices=turn.notices)
    return None


def check_self_harm(turn: Turn) -> Reply | None:
    rules = [e for e in turn.escalations if e.category == "self_harm"]
    said = g.is_self_harm(turn.text) and not turn.information
    learned = turn.intent_is("self_harm", confidence=SELF_HARM_INTENT_CONFIDENCE)
    if not (rules or said or learned or turn.harmful == "self_harm_method"):
        return None
    return reply_self_harm(turn, rules)


def check_emergency(turn: Turn) -> Reply | None:
    urgent = [e for e in turn.escalations if e.category != "self_harm"]
    if not urgent:
        return None
    return reply_emergency(turn, urgent, also_refuse=turn.harmful)


def check_victim(turn: Turn) -> Reply | None:
    """Someone threatened, hurt or drugged by another person hears first how to get safe (112, 119, 1366)."""
    if turn.harmful is not None or not g.is_victim(turn.text):
        return None
    triage = Triage("urgent", [texts.VICTIM_REASON], ["112", "119", "1366"])
    return Reply(answer=texts.VICTIM + "\n" + texts.DISCLAIMER, kind="answer", triage=triage, entities=turn.entities,
                 notices=turn.notices)


def check_greeting(turn: Turn) -> Reply | None:
    short = len(turn.text) <= 30 and not turn.mentions
    if g.is_greeting(turn.text) or (short and turn.intent_is("greeting", confidence=0.4)):
        return Reply(answer=texts.GREETING, kind="greeting", notices=turn.notices)
    return None


def check_injection(turn: Turn) -> Reply | None:
    if g.is_prompt_injection(turn.text):
        return Reply(answer=texts.INJECTION, refused=True, kind="refusal", entities=turn.entities, notices=turn.notices)
    return None


def check_harmful(turn: Turn) -> Reply | None:
    category = turn.harmful
    # The classifier learned Korean; English requests rely on the rules' English patterns alone.
    if category is None and turn.heard_harmful() and not g.is_english(turn.text):
        if not (turn.mentions or g.looks_medical(turn.text)):
            # Heard as harmful and not about health at all: kmed only does health, so it redirects
            # rather than judging a question it was never built to judge (e.g. a contentious social one).
            return Reply(answer=texts.OUT_OF_SCOPE, refused=True, kind="refusal", notices=turn.notices)
        category = "harmful_general"
    if category is None:
        return None
    hotlines = ["109", "1577-0199"] if category == "lethal_dose" else []
    triage = Triage("info", [texts.HARMFUL_REASON[category]], hotlines)
    return Reply(answer=texts.HARMFUL[category], refused=True, kind="refusal", triage=triage,
                 entities=turn.entities, notices=turn.notices)


def check_out_of_scope(turn: Turn) -> Reply | None:
    """Redirect what shows no sign of being about health: no medical entity, no medical word, and
    the classifier does not hear a health intent either. A health question is never refused here."""
    if turn.mentions or g.looks_medical(turn.text) or in_consultation(turn):
        return None
    # The classifier learned Korean; for English, the rules' medical words are the only evidence.
    health = not g.is_english(turn.text) and turn.share_of(*HEALTH_INTENTS, "greeting") >= HEALTH_EVIDENCE
    if not health:
        return Reply(answer=texts.OUT_OF_SCOPE, refused=True, kind="refusal", notices=turn.notices)
    return None


def check_clarify(turn: Turn) -> Reply | None:
    """One clarifying question (at most two in a row) for a vague personal symptom report only."""
    state = turn.state
    if not is_report(turn) or state.clarify_streak >= 2 or turn.direct_question:
        return None
    profile = state.profile
    question = None
    if profile.duration is None and len(state.symptoms()) <= 1 and not profile.severe:
        question = texts.ASK_DURATION
    elif profile.is_child and profile.age_in_months() is None and "sym.fever" in state.mentioned:
        question = texts.ASK_CHILD_AGE
    if question is None:
        return None
    state.clarify_streak += 1
    return Reply(answer=question, kind="clarify", triage=Triage("routine", [texts.NEED_MORE_INFO]),
                 entities=turn.entities, departments=departments_for(turn), notices=turn.notices)


POLICY: list[tuple[str, Callable[[Turn], Reply | None]]] = [
    ("empty", check_empty),
    ("self_harm", check_self_harm),
    ("emergency", check_emergency),
    ("victim", check_victim),
    ("greeting", check_greeting),
    ("injection", check_injection),
    ("harmful", check_harmful),
    ("out_of_scope", check_out_of_scope),
    ("clarify", check_clarify),
]


def run_policy(turn: Turn) -> Reply | None:
    """The first check that answers, or None: answer from the knowledge base."""
    for _, check in POLICY:
        reply = check(turn)
        if reply is not None:
            return reply
    turn.state.clarify_streak = 0
    return None


# --- what the checks share ----------------------------------------------------------------------

def in_consultation(turn: Turn) -> bool:
    last = turn.session.last_reply
    return bool(turn.state.mentioned) or (last is not None and last.kind in ("clarify", "answer", "emergency"))


def departments_for(turn: Turn, candidates=()) -> list[str]:
    """Departments of the likely conditions and the symptoms; children and pregnancy come first."""
    q = turn.assistant.retriever.queries
    state = turn.state
    ids = [*candidates, *(m.id for m in turn.mentions if not m.negated and m.type in ("disease", "symptom")),
           *state.symptoms()]
    names = []
    profile = state.profile
    if profile.is_child or is_pediatric(profile.age_in_months()):
        names.append(texts.PEDIATRICS)
    if profile.pregnant:
        names.append(texts.OBSTETRICS)
    for entity_id in ids:
        names.extend(q.name(d) for d in q.departments_of(entity_id)[:1])
    return list(dict.fromkeys(names))[:3]


def is_report(turn: Turn) -> bool:
    """The person describes their own (or a family member's) current symptoms: the reply is triaged
    as routine. A direct question is never met with a clarifying question (``check_clarify``)."""
    if turn.information or turn.hypothetical:
        return False
    state, mentions = turn.state, turn.mentions
    last = turn.session.last_reply
    answering_us = last is not None and last.kind == "clarify"
    if turn.intent_is(*QUESTION_INTENTS, confidence=QUESTION_OVER_REPORT) and not answering_us:
        return False  # a clear question, even about one's own symptom, is answered as information
    if not answering_us and g.is_question(turn.text) and turn.names_disease_or_drug:
        return False  # it asks about a named disease or medicine ("…이게 족저근막염이야?"): answer about it
    if state.symptoms() and (any(m.type == "symptom" for m in mentions) or answering_us
                             or not any(m.type in ("disease", "drug") for m in mentions)):
        return True
    return g.sounds_like_report(turn.text) and not any(m.type == "drug" for m in mentions)


# --- reply builders -----------------------------------------------------------------------------

def _citation(turn: Turn, e: Escalation) -> Citation:
    return Citation(e.cite_id or e.layer, e.name, turn.assistant.source_names(list(e.cite_sources)), e.reason)


def reply_emergency(turn: Turn, escalations: list[Escalation], also_refuse: str | None = None) -> Reply:
    shown = escalations[:3]
    worst = shown[0]
    lines = [texts.EMERGENCY_BANNER if worst.level == "emergency" else texts.URGENT_BANNER]
    cited = [e for e in shown if e.cite_id]  # a classifier finding with no similar rule or condition cites nothing
    lines += [f"- {e.reason}" + (f" [{cited.index(e) + 1}]" if e in cited else "") for e in shown]
    lines.append(f"- {worst.action}")
    names = turn.assistant.retriever.queries.name
    departments = list(dict.fromkeys(names(d) for e in escalations for d in e.departments))[:3]
    if not departments:  # an urgent finding that names no situation: where what the person said is seen
        departments = departments_for(turn) or [names("dept.emergency_medicine")]
    if worst.level == "urgent":  # seen today, but not in the emergency room: say where
        lines.append("- " + texts.DEPARTMENT_LINE.format(departments=", ".join(departments)))
    if also_refuse:
        lines.append(texts.REFUSE_TOO.get(also_refuse, texts.REFUSE_TOO["harm_others"]))
    lines.append(texts.DISCLAIMER)
    hotlines = list(dict.fromkeys(h for e in escalations for h in e.hotlines))
    triage = Triage(worst.level, [e.name for e in escalations], hotlines)
    return Reply(answer="\n".join(lines), citations=[_citation(turn, e) for e in cited], triage=triage,
                 entities=turn.entities, departments=departments, kind="emergency", notices=turn.notices)


def reply_self_harm(turn: Turn, escalations: list[Escalation]) -> Reply:
    citations = [_citation(turn, e) for e in escalations[:1]]
    reasons = [e.name for e in escalations] or [texts.SELF_HARM_REASON]
    answer = texts.SELF_HARM + ("" if not citations else " [1]") + "\n" + texts.DISCLAIMER
    return Reply(answer=answer, citations=citations, triage=Triage("emergency", reasons, ["109", "1577-0199", "119"]),
                 entities=turn.entities, departments=[texts.PSYCHIATRY], kind="emergency", notices=turn.notices)
