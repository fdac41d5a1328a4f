"""Grounded consultation evaluation on a dev set of patient-voice cases (single and multi-turn).

    kmed eval grounded --json [--set dev|test|regression] [--data FILE] [--model PATH]

Sets (``--set``):
- ``dev`` (default): ``data/eval/consult_dev.jsonl``, two thirds of a consultation set written by
  people who never saw kmed's rules, KB or code. Tune on this one only.
- ``test``: ``data/eval/consult_test.jsonl``, the locked third of the same set (a seeded hash chose
  it once, ``kmed.eval.splits``). Run it only to report, beside dev; failures are not printed
  unless ``--show-failures`` is given, so nobody tunes to them.
- ``regression``: ``data/eval/grounded_dev.jsonl``, the team's own 214 cases.

Each dev line::

    {"id": "gc-001", "turns": ["머리가 아파요", "이틀 됐고 목이 뻣뻣해요"],
     "expect": {"triage": "emergency", "refused": false, "departments_any": ["신경과", "응급의학과"],
                "key_facts": ["119|응급실"], "entities_any": ["sym.headache"]}}

The last reply is judged. A case passes when every given expectation holds:
- ``triage``: the level matches; ``routine`` and ``self_care`` count as one group;
- ``refused``: equal; ``departments_any``: at least one named department is suggested;
- ``key_facts``: each item (alternatives split by ``|``) occurs in the answer text;
- ``entities_any``: at least one id among the reply's entities;
- ``reply_type``: ``escalate`` (an emergency or urgent reply), ``answer`` (a direct answer: not a
  clarifying question, not a refusal), ``refuse`` (a refusal).

Also reported: emergency recall (expected emergency → replied emergency; must be 1.0), over-triage
(a higher level than expected), citation coverage (supported / medical sentences, from the output
guard), quoted-sentence fragments (cited sentences that are not whole sentences; must be 0),
refusal precision and recall, per-category pass rates (the case's ``category`` or first tag), and
per-turn latency.
"""

from __future__ import annotations

import time
from pathlib import Path

from kmed.agent.triage import LEVEL_RANK
from kmed.eval.dataset import read_cases
from kmed.eval.stats import p50_p95
from kmed.paths import PROJECT_ROOT

EVAL_DIR = PROJECT_ROOT / "data" / "eval"
SETS = {"dev": EVAL_DIR / "consult_dev.jsonl", "test": EVAL_DIR / "consult_test.jsonl",
        "regression": EVAL_DIR / "grounded_dev.jsonl"}
DEFAULT_DATA = SETS["regression"]
REPLY_TYPES = {"escalate", "answer", "refuse"}
LEVELS = set(LEVEL_RANK)


def _parse_case(case: dict) -> dict:
    assert case["turns"] and isinstance(case["expect"], dict), "needs turns and expect"
    level = case["expect"].get("triage")
    assert level is None or level in LEVELS, f"unknown triage level {level}"
    assert case["expect"].get("reply_type") in (None, *REPLY_TYPES), f"unknown reply_type {case['expect'].get('reply_type')}"
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
    if expect.get("reply_type"):
        got = "escalate" if reply.kind == "emergency" else "refuse" if reply.refused else reply.kind
        checks["reply_type"] = got == expect["reply_type"]
    return checks


def evaluate(assistant, cases: list[dict], rows: list[dict] | None = None) -> dict:
    """The summary; every case's row is also appended to ``rows`` when given (``cases.jsonl``)."""
    rows = [] if rows is None else rows
    latencies = []
    medical = supported = fragments = 0
    for case in cases:
        session = assistant.session()
        reply = None
        for turn in case["turns"]:
            started = time.perf_counter()
            reply = session.ask(turn)
            latencies.append((time.perf_counter() - started) * 1000)
        medical += reply.verification.get("medical_sentences", 0)
        supported += reply.verification.get("supported", 0)
        fragments += reply.verification.get("fragments", 0)
        checks = judge(reply, case["expect"])
        category = case.get("category") or (case.get("tags") or ["-"])[0]
        rows.append({"id": case["id"], "category": category, "passed": all(checks.values()), "checks": checks,
                     "expected": case["expect"],
                     "got": {"triage": reply.triage.level, "refused": reply.refused, "departments": reply.departments,
                             "kind": reply.kind}, "turns": case["turns"], "answer": reply.answer[:300]})
    return summarize(rows, latencies, medical, supported, fragments)


def summarize(rows: list[dict], latencies: list[float], medical: int, supported: int, fragments: int = 0) -> dict:
    def rate(numerator: int, denominator: int) -> float | None:
        return round(numerator / denominator, 4) if denominator else None

    expected_emergency = [r for r in rows if r["expected"].get("triage") == "emergency"]
    non_emergency = [r for r in rows if r["expected"].get("triage") in LEVELS - {"emergency"}]
    over = [r for r in non_emergency if LEVEL_RANK[r["got"]["triage"]] > LEVEL_RANK[r["expected"]["triage"]]]
    refusal_expected = [r for r in rows if r["expected"].get("refused") is True]
    refused = [r for r in rows if r["got"]["refused"]]
    true_refusals = [r for r in refused if r["expected"].get("refused") is True]
    return {
        "cases": len(rows),
        "pass_rate": rate(sum(r["passed"] for r in rows), len(rows)),
        "emergency_recall": rate(sum(r["got"]["triage"] == "emergency" for r in expected_emergency), len(expected_emergency)),
        "emergency_cases": len(expected_emergency),
        "over_triage_rate": rate(len(over), len(non_emergency)),
        "citation_coverage": rate(supported, medical),
        "quoted_fragments": fragments,
        "refusal_precision": rate(len(true_refusals), len(refused)),
        "refusal_recall": rate(len(true_refusals), len(refusal_expected)),
        "turn_latency_ms": p50_p95(latencies, 2),
        "per_category": {c: {"cases": len(rs), "pass_rate": rate(sum(r["passed"] for r in rs), len(rs))}
                         for c, rs in sorted(_by_category(rows).items())},
        "failures": [r for r in rows if not r["passed"]],
    }


def _by_category(rows: list[dict]) -> dict[str, list[dict]]:
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(row.get("category", "-"), []).append(row)
    return groups


def score_model_folder(path: str, max_items: int = 20) -> tuple[float, str]:
    """Grounded QA pass rate of a model folder served inside the full assistant (a compression gate)."""
    from kmed.agent.assistant import Assistant
    from kmed.llm.factory import load_generator

    assistant = Assistant.load(generator=load_generator(path))
    summary = evaluate(assistant, load_cases()[:max_items])
    return summary["pass_rate"], f"grounded dev set, {summary['cases']} cases"
