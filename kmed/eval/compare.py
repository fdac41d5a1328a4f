"""A/B verification: two evaluation runs compared case by case, with paired significance.

    kmed eval grounded --set dev --out runs/a                 # writes cases.jsonl beside report.json
    kmed eval grounded --set dev --no-classifier --out runs/b
    kmed eval compare runs/a runs/b [--json]

Both runs must hold the same case ids (a comparison over different cases is refused). Reported per
metric, as B − A:

- ``pass`` (each case passes or fails): the two rates, the discordant counts (A only, B only) and
  McNemar's exact test, i.e. a two-sided binomial test of the discordant pairs at p = 0.5;
- ``emergency_recall`` and ``over_triage`` (rates over a subset of cases): the difference with a
  paired bootstrap 95 % interval (cases resampled together, seeded, 2,000 draws) and McNemar's test
  on the subset's per-case outcomes.

With a few hundred cases a difference of two points is often noise; the p-value and the interval
say whether it is.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

from kmed.agent.triage import LEVEL_RANK
from kmed.errors import KmedError

BOOTSTRAP_DRAWS = 2000
SEED = 20261207


def mcnemar_exact(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts (binomial, p = 0.5)."""
    n = only_a + only_b
    if n == 0:
        return 1.0
    k = min(only_a, only_b)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)


def paired_bootstrap(a: list[float], b: list[float], draws: int = BOOTSTRAP_DRAWS, seed: int = SEED) -> tuple[float, float]:
    """95 % percentile interval of mean(b) − mean(a), resampling the paired cases together."""
    if not a:
        return (0.0, 0.0)
    rng = random.Random(seed)
    n = len(a)
    diffs = []
    for _ in range(draws):
        picked = [rng.randrange(n) for _ in range(n)]
        diffs.append(sum(b[i] - a[i] for i in picked) / n)
    diffs.sort()
    return (round(diffs[int(0.025 * draws)], 4), round(diffs[int(0.975 * draws) - 1], 4))


def read_cases(run: str | Path) -> dict[str, dict]:
    path = Path(run) / "cases.jsonl"
    if not path.exists():
        raise KmedError(f"'{run}'에 cases.jsonl 이 없어요.",
                        "kmed eval grounded --out <폴더> 로 실행한 결과 폴더를 주세요.")
    rows = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                row = json.loads(line)
                rows[row["id"]] = row
            except (ValueError, KeyError) as exc:
                raise KmedError(f"{path}:{n}번째 줄을 읽을 수 없어요 ({exc}).", "평가를 --out 으로 다시 실행하세요.") from exc
    return rows


def _outcomes(row: dict) -> dict[str, bool | None]:
    expected, got = row["expected"].get("triage"), row["got"]["triage"]
    emergency = got == "emergency" if expected == "emergency" else None
    over = (LEVEL_RANK[got] > LEVEL_RANK[expected]) if expected in LEVEL_RANK and expected != "emergency" else None
    return {"pass": bool(row["passed"]), "emergency_recall": emergency, "over_triage": over}


def _metric(pairs: list[tuple[bool, bool]]) -> dict:
    a = [float(x) for x, _ in pairs]
    b = [float(y) for _, y in pairs]
    only_a = sum(1 for x, y in pairs if x and not y)
    only_b = sum(1 for x, y in pairs if y and not x)
    rate_a, rate_b = sum(a) / len(a), sum(b) / len(b)
    return {"n": len(pairs), "a": round(rate_a, 4), "b": round(rate_b, 4), "difference": round(rate_b - rate_a, 4),
            "ci95": paired_bootstrap(a, b), "only_a": only_a, "only_b": only_b,
            "p_value": float(f"{mcnemar_exact(only_a, only_b):.3g}")}


def _score_metric(pairs: list[tuple[float, float]]) -> dict:
    """A graded score (0..1, or seconds) per case: mean difference with a paired bootstrap interval,
    and a two-sided sign test on the cases where the two differ (the same binomial as McNemar's)."""
    a = [x for x, _ in pairs]
    b = [y for _, y in pairs]
    better_a = sum(1 for x, y in pairs if x > y)
    better_b = sum(1 for x, y in pairs if y > x)
    mean_a, mean_b = sum(a) / len(a), sum(b) / len(b)
    return {"n": len(pairs), "a": round(mean_a, 4), "b": round(mean_b, 4), "difference": round(mean_b - mean_a, 4),
            "ci95": paired_bootstrap(a, b), "only_a": better_a, "only_b": better_b,
            "p_value": float(f"{mcnemar_exact(better_a, better_b):.3g}")}


def _compare_answers(a: dict, b: dict, ids: list[str]) -> dict:
    """Runs of ``kmed eval answers``: every score, the nothing-found rate and the answer time, paired."""
    metrics = {}
    for name in a[ids[0]]["scores"]:
        pairs = [(a[i]["scores"][name], b[i]["scores"][name]) for i in ids
                 if a[i]["scores"][name] is not None and b[i]["scores"][name] is not None]
        if pairs:
            metrics[name] = _score_metric(pairs)
    metrics["nothing_found"] = _metric([(a[i]["nothing_found"], b[i]["nothing_found"]) for i in ids])
    metrics["answer_s"] = _score_metric([(a[i]["answer_s"], b[i]["answer_s"]) for i in ids])
    return metrics


def compare(run_a: str | Path, run_b: str | Path) -> dict:
    a, b = read_cases(run_a), read_cases(run_b)
    if set(a) != set(b):
        missing, extra = sorted(set(a) - set(b))[:5], sorted(set(b) - set(a))[:5]
        raise KmedError(f"두 실행의 사례가 달라요 (A에만 {len(set(a) - set(b))}개, B에만 {len(set(b) - set(a))}개; 예: {missing or extra}).",
                        "같은 평가 세트(--set)로 실행한 두 결과만 비교할 수 있어요.")
    ids = sorted(a)
    kinds = {row.get("kind") for row in (*a.values(), *b.values())}
    if "answer_quality" in kinds:
        if kinds != {"answer_quality"}:
            raise KmedError("답변 품질 평가(eval answers)와 상담 평가(eval grounded) 결과는 비교할 수 없어요.",
                            "같은 명령으로 만든 두 결과를 주세요.")
        return {"a": str(run_a), "b": str(run_b), "cases": len(ids), "metrics": _compare_answers(a, b, ids), "changed": []}
    outcomes = {i: (_outcomes(a[i]), _outcomes(b[i])) for i in ids}
    metrics = {}
    for name in ("pass", "emergency_recall", "over_triage"):
        pairs = [(oa[name], ob[name]) for oa, ob in outcomes.values() if oa[name] is not None]
        if pairs:
            metrics[name] = _metric(pairs)
    changed = [{"id": i, "a": a[i]["passed"], "b": b[i]["passed"], "expected": a[i]["expected"].get("triage"),
                "a_got": a[i]["got"]["triage"], "b_got": b[i]["got"]["triage"]}
               for i in ids if a[i]["passed"] != b[i]["passed"]]
    return {"a": str(run_a), "b": str(run_b), "cases": len(ids), "metrics": metrics, "changed": changed}


def to_markdown(report: dict) -> str:
    # Graded answer scores (kmed eval answers) are paired with a sign test, pass/fail outcomes with McNemar's.
    test = "sign-test" if "fact_recall" in report["metrics"] else "McNemar"
    lines = [f"# A/B: {report['a']} → {report['b']} ({report['cases']} paired cases)", "",
             f"| metric | n | A | B | B − A | 95 % CI (paired bootstrap) | A only | B only | {test} p |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, m in report["metrics"].items():
        lines.append(f"| {name} | {m['n']} | {m['a']} | {m['b']} | {m['difference']:+} | [{m['ci95'][0]:+}, {m['ci95'][1]:+}] "
                     f"| {m['only_a']} | {m['only_b']} | {m['p_value']:.3g} |")
    return "\n".join(lines) + "\n"
