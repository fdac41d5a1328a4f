"""Grounded consultation evaluation on a dev set of patient-voice cases (single and multi-turn).

    kmed eval grounded --json [--data data/eval/grounded_dev.jsonl] [--model PATH]

Each dev line::

    {"id": "gc-001", "turns": ["머리가 아파요", "이틀 됐고 목이 뻣뻣해요"],
     "expect": {"triage": "emergency", "refused": false, "departments_any": ["신경과", "응급의학과"],
                "key_facts": ["119|응급실"], "entities_any": ["sym.headache"]}}

The last reply is judged. A case passes when every given expectation holds:
- ``triage``: the level matches; ``routine`` and ``self_care`` count as one group;
- ``refused``: equal; ``departments_any``: at least one named department is suggested;
- ``key_facts``: each item (alternatives split by ``|``) occurs in the answer text;
- ``entities_any``: at least one id among the reply's entities.

Also reported: emergency recall (expected emergency → replied emergency; must be 1.0), over-triage
(a higher level than expected), citation coverage (supported / medical sentences, from the output
guard), refusal precision and recall, and per-turn latency.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from kmed.eval.dataset import read_cases
from kmed.paths import PROJECT_ROOT

DEFAULT_DATA = PROJECT_ROOT / "data" / "eval" / "grounded_dev.jsonl"
LEVEL_RANK = {"info": 0, "self_care": 1, "routine": 1, "urgent": 2, "emergency": 3}
LEVELS = set(LEVEL_RANK)


def _parse_case(case: dict) -> dict:
    assert case["turns"] and isinstance(case["expect"], dict), "needs turns and expect"
    level = case["expect"].get("triage")
    assert level is None or level in LEVELS, f"unknown triage level {level}"
    return case


def load_cases(path: str | Path | None = None) -> list[dict]:
    return read_cases(path or DEFAULT_DATA, _parse_case, "kmed/eval/grounded_eval.py 설명")


def judge(reply, expect: dict) -> dict[str, bool]:
    checks = {}
    level = reply.triage.level
    if "triage" in expect:
        checks["triage"] = LEVEL_RANK[level] == LEVEL_RANK[expect["triage"]]
    if "refused" in expect:
        checks["refused"] = reply.refused == bool(expect["refused"])
    if expect.get("departments_any"):
        checks["departments"] = bool(set(expect["departments_any"]) & set(reply.departments))
    if expect.get("key_facts"):
        checks["key_facts"] = all(any(alt.strip() in reply.answer for alt in fact.split("|")) for fact in expect["key_facts"])
    if expect.get("entities_any"):
        checks["entities"] = bool(set(expect["entities_any"]) & {e["id"] for e in reply.entities})
    return checks


def evaluate(assistant, cases: list[dict]) -> dict:
    rows, latencies = [], []
    medical = supported = 0
    for case in cases:
        session = assistant.session()
        reply = None
        for turn in case["turns"]:
            started = time.perf_counter()
            reply = session.ask(turn)
            latencies.append((time.perf_counter() - started) * 1000)
        medical += reply.verification.get("medical_sentences", 0)
        supported += reply.verification.get("supported", 0)
        checks = judge(reply, case["expect"])
        rows.append({"id": case["id"], "passed": all(checks.values()), "checks": checks, "expected": case["expect"],
                     "got": {"triage": reply.triage.level, "refused": reply.refused, "departments": reply.departments,
                             "kind": reply.kind}, "turns": case["turns"], "answer": reply.answer[:300]})
    return summarize(rows, latencies, medical, supported)


def summarize(rows: list[dict], latencies: list[float], medical: int, supported: int) -> dict:
    def rate(numerator: int, denominator: int) -> float | None:
        return round(numerator / denominator, 4) if denominator else None

    expected_emergency = [r for r in rows if r["expected"].get("triage") == "emergency"]
    non_emergency = [r for r in rows if r["expected"].get("triage") in LEVELS - {"emergency"}]
    over = [r for r in non_emergency if LEVEL_RANK[r["got"]["triage"]] > LEVEL_RANK[r["expected"]["triage"]]]
    refusal_expected = [r for r in rows if r["expected"].get("refused") is True]
    refused = [r for r in rows if r["got"]["refused"]]
    true_refusals = [r for r in refused if r["expected"].get("refused") is True]
    ordered = sorted(latencies)
    return {
        "cases": len(rows),
        "pass_rate": rate(sum(r["passed"] for r in rows), len(rows)),
        "emergency_recall": rate(sum(r["got"]["triage"] == "emergency" for r in expected_emergency), len(expected_emergency)),
        "emergency_cases": len(expected_emergency),
        "over_triage_rate": rate(len(over), len(non_emergency)),
        "citation_coverage": rate(supported, medical),
        "refusal_precision": rate(len(true_refusals), len(refused)),
        "refusal_recall": rate(len(true_refusals), len(refusal_expected)),
        "turn_latency_ms": {"p50": round(statistics.median(ordered), 2) if ordered else None,
                            "p95": round(ordered[max(0, int(0.95 * len(ordered)) - 1)], 2) if ordered else None},
        "failures": [r for r in rows if not r["passed"]],
    }
