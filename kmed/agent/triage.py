"""Triage in layers: KB rules, the KG's urgent conditions, and the learned classifier.

    escalations = triage_layers(turn)   # most severe first; empty when nothing is urgent

Each layer may only raise the level, never lower it:

1. **Rules** (``data/kb/red_flags``): the floor. Deterministic patterns over entities and text.
2. **KG urgency**: every condition carries an urgency (``urgency`` in the KB, routine when absent).
   When the person's symptoms, gathered over the session, rank an emergency or urgent condition
   among the top candidates *and* include one of its red-flag symptoms *and* cover at least half of
   its symptoms (two at least), the reply escalates to that condition's level and cites it.
3. **Classifier** (``kmed.agent.classifier``): the probability that the words describe an
   emergency, an urgent problem or self-harm, trained on thousands of varied utterances. Above its
   threshold it escalates, naming the most similar situation it was trained on (a red-flag rule or an
   emergency condition), and cites that rule or condition.

A question about a topic ("뇌졸중 증상이 뭐예요?") and a hypothetical ("만약 …면") are not reports, so
the rules skip them; the classifier still reads them (it was trained with such questions as
non-emergencies).
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Thresholds on the classifier's probabilities, chosen on the dev split of the consultation set
# (data/eval/consult_dev.jsonl) only; the locked test split never informs them.
EMERGENCY_THRESHOLD = 0.7
URGENT_THRESHOLD = 0.8
SELF_HARM_THRESHOLD = 0.5
# A message of one or two words ("숨이 차요", "어지러워요") carries too little for the classifier to judge:
# the rules judge it, and a vague report gets a clarifying question whose answer is then judged.
MIN_WORDS_FOR_CLASSIFIER = 3
# KG layer: how strongly the symptoms must point at an urgent condition.
KG_TOP_CANDIDATES = 3
KG_MIN_MATCHED = 2
KG_MIN_COVERAGE = 0.5  # share of the condition's own symptoms the person has
LEVEL_RANK = {"info": 0, "self_care": 1, "routine": 1, "urgent": 2, "emergency": 3}


@dataclass(frozen=True)
class Escalation:
    """Why a reply escalates: one rule, urgent condition or classifier finding, with what to do."""

    level: str  # emergency | urgent
    name: str  # short Korean name of the situation
    reason: str  # one sentence shown to the person
    action: str  # what to do now
    hotlines: tuple[str, ...] = ("119",)
    departments: tuple[str, ...] = ("dept.emergency_medicine",)
    layer: str = "rules"  # rules | kg | classifier
    category: str = "medical"  # medical | self_harm | poisoning
    cite_id: str = ""  # the rule or condition cited
    cite_sources: tuple[str, ...] = field(default_factory=tuple)


def from_rule(rule, layer: str = "rules") -> Escalation:
    return Escalation(rule.level, rule.name, rule.reason, rule.action, tuple(rule.hotlines),
                      tuple(rule.departments or ["dept.emergency_medicine"]), layer, rule.category, rule.id,
                      tuple(rule.source_ids()))


def from_condition(kb, condition_id: str, layer: str) -> Escalation | None:
    condition = kb.conditions.get(condition_id)
    if condition is None or condition.urgency is None:
        return None
    urgency = condition.urgency
    action = ("지금 바로 119에 전화하거나 가까운 응급실로 가세요." if urgency.level == "emergency"
              else "오늘 안에(24시간 이내) 진료를 받고, 심해지면 119에 전화하세요.")
    departments = ("dept.emergency_medicine", *condition.departments[:1]) if urgency.level == "emergency" else tuple(condition.departments[:2])
    return Escalation(urgency.level, condition.name, urgency.reason, action, ("119",), departments, layer, "medical",
                      condition.id, tuple(urgency.sources))


def kg_layer(kb, queries, symptom_ids: list[str]) -> list[Escalation]:
    """Urgent conditions the session's symptoms point at strongly enough (see the module docstring)."""
    if len(symptom_ids) < KG_MIN_MATCHED:
        return []
    out = []
    for candidate in queries.candidate_conditions(symptom_ids, limit=KG_TOP_CANDIDATES):
        node = queries.graph.nodes.get(candidate.id, {})
        if node.get("urgency", "routine") == "routine" or len(candidate.matched) < KG_MIN_MATCHED:
            continue
        own = {dst for _, dst, d in queries.graph.out_edges(candidate.id, data=True) if d["type"] == "has_symptom"}
        if len(set(candidate.matched)) < KG_MIN_COVERAGE * len(own):
            continue
        if not set(candidate.matched) & set(queries.red_flag_symptoms_of(candidate.id)):
            continue
        escalation = from_condition(kb, candidate.id, "kg")
        if escalation:
            out.append(escalation)
    return out


def classifier_layer(kb, classifier, text: str, prediction) -> list[Escalation]:
    """The classifier's finding (``prediction`` of ``text``), named after the most similar situation it knows."""
    if classifier is None or prediction is None or len(text.split()) < MIN_WORDS_FOR_CLASSIFIER:
        return []
    probs = prediction.triage
    if probs.get("self_harm", 0.0) >= SELF_HARM_THRESHOLD:
        rule = kb.red_flags.get("rf.suicidal_thoughts")
        return [from_rule(rule, "classifier")] if rule else []
    if probs.get("emergency", 0.0) >= EMERGENCY_THRESHOLD:
        level = "emergency"
    elif probs.get("emergency", 0.0) + probs.get("urgent", 0.0) >= URGENT_THRESHOLD:
        level = "urgent"
    else:
        return []
    target = classifier.nearest_target(text, level)
    escalation = None
    if target and target in kb.red_flags:
        escalation = from_rule(kb.red_flags[target], "classifier")
    elif target:
        escalation = from_condition(kb, target, "classifier")
    if escalation is None or LEVEL_RANK[escalation.level] < LEVEL_RANK[level]:
        action = "지금 바로 119에 전화하거나 가까운 응급실로 가세요." if level == "emergency" else "오늘 안에(24시간 이내) 진료를 받으세요."
        name = escalation.name if escalation else "응급일 수 있는 증상"
        escalation = Escalation(level, name, "말씀하신 증상은 바로 진료가 필요한 상황과 비슷해요.", action, layer="classifier",
                                cite_id=escalation.cite_id if escalation else "",
                                cite_sources=escalation.cite_sources if escalation else ())
    return [escalation]


def most_severe_first(escalations: list[Escalation]) -> list[Escalation]:
    """Drop repeats (same rule or condition), most severe first, rules before other layers."""
    seen, unique = set(), []
    order = {"rules": 0, "kg": 1, "classifier": 2}
    for e in sorted(escalations, key=lambda e: (-LEVEL_RANK[e.level], order.get(e.layer, 3))):
        key = e.cite_id or e.name
        if key not in seen:
            seen.add(key)
            unique.append(e)
    return unique
