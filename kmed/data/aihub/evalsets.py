"""Medical evaluation sets from held-out QA, and the two ways to score them.

- ``medical_mcq.jsonl``: multiple choice, scored by option (``score_mcq``: the option number a
  prediction picks, from "3)", "3번", "③" or "정답: 3", against the gold number).
- ``medical_open.jsonl``: short-answer and descriptive, scored by key-fact overlap
  (``key_fact_recall``: the share of key facts found in the prediction, spacing, case and
  particles ignored).

    >>> score_mcq("정답은 ③ 아세트아미노펜이에요", "3")
    1.0
    >>> key_fact_recall("양성자펌프억제제를 먼저 써요", ["양성자펌프억제제", "체중 감량"])
    0.5
"""

from __future__ import annotations

import re

from kmed.data.aihub.choices import CIRCLED, answer_label, circled_to_number
from kmed.data.aihub.records import QA
from kmed.data.aihub.text import content_terms, norm_key

_ANYWHERE = re.compile(rf"(?:(\d{{1,2}})\s*번|([{CIRCLED}]))")
_ANSWER_WORD = re.compile(r"정답\s*(?:은|는)?\s*[:：]?\s*(\d{1,2})(?!\d)")
_LIST_SPLIT = re.compile(r"\s*(?:,|·|;|\n|\s및\s|\s그리고\s)\s*")  # not "/": "140/90 mmHg" is one fact


def parse_choice(text: str) -> str:
    label = answer_label(text, {})
    if label:
        return label
    if text.strip().isdigit():
        return str(int(text.strip()))
    match = _ANSWER_WORD.search(text) or _ANYWHERE.search(text)
    if not match:
        return ""
    groups = [g for g in match.groups() if g]
    return circled_to_number(groups[0]) if groups[0] in CIRCLED else str(int(groups[0]))


def score_mcq(prediction: str, gold_label: str) -> float:
    return 1.0 if parse_choice(prediction) == str(gold_label) else 0.0


def key_fact_recall(prediction: str, key_facts: list[str]) -> float:
    if not key_facts:
        return 0.0
    text = norm_key(prediction)
    return sum(1 for fact in key_facts if norm_key(fact) and norm_key(fact) in text) / len(key_facts)


_NOUN_TAGS = ("NNG", "NNP", "SL", "SN", "SH", "XSN")
# Nouns too general to be a fact on their own.
_GENERAL_NOUNS = set("경우 때 수 것 등 이상 이하 정도 하루 사람 환자 방법 사용 필요 가능 진행 위험 증상 치료 상태 다음 부분".split())
_kiwi = None


def _noun_phrases(text: str) -> list[str]:
    """Runs of nouns (and foreign words, numbers) as they appear: "바렛 식도", "식도 협착", "AED"."""
    global _kiwi
    try:
        if _kiwi is None:
            from kmed.text_ko import new_kiwi

            _kiwi = new_kiwi()
    except ImportError:  # kiwipiepy is a core dependency; this keeps eval sets possible without it
        return content_terms(text)
    phrases: list[str] = []
    run: list = []
    tokens = _kiwi.tokenize(text)
    for token in [*tokens, None]:
        joins = token is not None and token.tag.split("-")[0] in _NOUN_TAGS
        if joins and run and token.start - (run[-1].start + run[-1].len) > 1:
            joins = False
            phrases.append(text[run[0].start : run[-1].start + run[-1].len])
            run = []
        if joins:
            run.append(token)
            continue
        predicate = token is not None and token.tag in ("XSV", "XSA")  # "진행하다": a verb, not a fact
        if run and not (predicate and len(run) == 1):
            phrases.append(text[run[0].start : run[-1].start + run[-1].len])
        run = []
    return [p for p in phrases if len(p) >= 2 and p not in _GENERAL_NOUNS]


def key_facts(question: str, answer: str, q_type: str, max_facts: int = 8) -> list[str]:
    """Short answers: the answer itself (or its listed items). Descriptive: the noun phrases the
    answer adds beyond the question, in order of appearance, then the ones it shares."""
    if q_type == "short":
        items = [item.strip(" .") for item in _LIST_SPLIT.split(answer) if item.strip(" .")]
        return items[:max_facts] if items else [answer.strip()]
    in_question = norm_key(question)
    phrases = list(dict.fromkeys(_noun_phrases(answer)))
    ranked = [p for p in phrases if norm_key(p) not in in_question] + [p for p in phrases if norm_key(p) in in_question]
    return ranked[:max_facts]


def mcq_item(qa: QA) -> dict:
    return {
        "id": qa.uid,
        "question": qa.question,
        "options": dict(sorted(qa.options.items(), key=lambda item: int(item[0]))),
        "answer": qa.answer_label,
        "answer_text": qa.answer_text(),
        "explanation": qa.explanation,
        "domain": qa.domain,
        "department": qa.department,
        "dataset": qa.prov.dataset,
        "split": qa.split,
        "provenance": qa.prov.to_dict(),
    }


def open_item(qa: QA, max_facts: int = 8) -> dict:
    return {
        "id": qa.uid,
        "question": qa.question,
        "answer": qa.answer,
        "key_facts": key_facts(qa.question, qa.answer, qa.q_type, max_facts),
        "q_type": qa.q_type,
        "domain": qa.domain,
        "department": qa.department,
        "dataset": qa.prov.dataset,
        "split": qa.split,
        "provenance": qa.prov.to_dict(),
    }
