"""Evaluation metrics and judging: hand-computed examples, so a formula slip fails loudly."""

from __future__ import annotations

import math

import pytest

from kmed.agent.reply import Reply, Triage
from kmed.eval.grounded_eval import judge, summarize
from kmed.eval.retrieval_eval import score_ranking


def test_retrieval_metrics_by_hand():
    scores = score_ranking(["a", "x", "b", "y"], ["b", "a"])
    assert scores["recall@1"] == 0.5 and scores["recall@5"] == 1.0 and scores["mrr"] == 1.0
    dcg = 1 / math.log2(2) + 1 / math.log2(4)
    idcg = 1 / math.log2(2) + 1 / math.log2(3)
    assert scores["ndcg@10"] == pytest.approx(dcg / idcg)
    miss = score_ranking(["x", "y"], ["a"])
    assert miss == {"recall@1": 0.0, "recall@5": 0.0, "recall@10": 0.0, "mrr": 0.0, "ndcg@10": 0.0}


def _reply(level="routine", refused=False, departments=(), answer="", entities=()):
    return Reply(answer=answer, triage=Triage(level), refused=refused, departments=list(departments),
                 entities=[{"id": e, "name": e, "type": "symptom"} for e in entities])


def test_judge_checks_each_expectation():
    reply = _reply("self_care", departments=["이비인후과"], answer="집에서 쉬고 물을 충분히 마셔요.", entities=["sym.cough"])
    assert all(judge(reply, {"triage": "routine", "refused": False, "departments_any": ["이비인후과"],
                             "key_facts": ["물|수분"], "entities_any": ["sym.cough"]}).values())
    assert not judge(reply, {"triage": "emergency"})["triage"]
    assert not judge(reply, {"key_facts": ["119"]})["key_facts"]


def test_summary_rates():
    rows = [
        {"passed": True, "expected": {"triage": "emergency"}, "got": {"triage": "emergency", "refused": False}},
        {"passed": False, "expected": {"triage": "emergency"}, "got": {"triage": "urgent", "refused": False}},
        {"passed": False, "expected": {"triage": "info"}, "got": {"triage": "routine", "refused": False}},
        {"passed": True, "expected": {"triage": "info", "refused": True}, "got": {"triage": "info", "refused": True}},
    ]
    report = summarize(rows, [10.0, 20.0, 30.0], medical=10, supported=9)
    assert report["pass_rate"] == 0.5 and report["emergency_recall"] == 0.5
    assert report["over_triage_rate"] == 0.5 and report["citation_coverage"] == 0.9
    assert report["refusal_precision"] == 1.0 and report["refusal_recall"] == 1.0


def test_the_consultation_split_is_the_seeded_one():
    """consult_dev/consult_test are exactly the seeded-hash split of the writers' cases, disjoint."""
    from kmed.eval.grounded_eval import SETS, load_cases
    from kmed.eval.splits import split_ids

    dev = [c["id"] for c in load_cases(SETS["dev"])]
    test = [c["id"] for c in load_cases(SETS["test"])]
    assert len(dev) + len(test) >= 900 and not set(dev) & set(test)
    assert split_ids(dev + test) == (set(dev), set(test))


def test_reply_type_is_judged():
    from kmed.agent.reply import Reply
    from kmed.eval.grounded_eval import judge

    assert judge(Reply(answer="…", kind="clarify"), {"reply_type": "answer"}) == {"reply_type": False}
    assert judge(Reply(answer="…", kind="emergency"), {"reply_type": "escalate"}) == {"reply_type": True}
    assert judge(Reply(answer="…", kind="refusal", refused=True), {"reply_type": "refuse"}) == {"reply_type": True}
