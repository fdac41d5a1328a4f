"""A/B verification (kmed.eval.compare): McNemar's exact test and the paired bootstrap, against scipy."""

from __future__ import annotations

import json

import pytest

from kmed.errors import KmedError
from kmed.eval.compare import compare, mcnemar_exact, paired_bootstrap


@pytest.mark.parametrize("only_a, only_b", [(0, 0), (1, 0), (3, 9), (10, 10), (2, 25), (40, 61)])
def test_mcnemar_matches_scipy_binomial_test(only_a, only_b):
    from scipy.stats import binomtest

    expected = 1.0 if only_a + only_b == 0 else binomtest(min(only_a, only_b), only_a + only_b, 0.5).pvalue
    assert mcnemar_exact(only_a, only_b) == pytest.approx(expected, rel=1e-9)


def test_bootstrap_interval_is_seeded_and_brackets_the_difference():
    a = [1.0] * 60 + [0.0] * 40
    b = [1.0] * 75 + [0.0] * 25
    low, high = paired_bootstrap(a, b)
    assert (low, high) == paired_bootstrap(a, b)
    assert low <= 0.15 <= high and low > 0


def _run(folder, outcomes):
    folder.mkdir()
    with open(folder / "cases.jsonl", "w", encoding="utf-8") as handle:
        for case_id, (passed, expected, got) in outcomes.items():
            handle.write(json.dumps({"id": case_id, "passed": passed, "expected": {"triage": expected},
                                     "got": {"triage": got}}) + "\n")
    return folder


def test_constructed_runs(tmp_path):
    a = {f"e{i}": (i < 5, "emergency", "emergency" if i < 5 else "routine") for i in range(10)}
    a |= {f"r{i}": (True, "routine", "routine") for i in range(10)}
    b = {f"e{i}": (True, "emergency", "emergency") for i in range(10)}
    b |= {f"r{i}": (i > 1, "routine", "emergency" if i <= 1 else "routine") for i in range(10)}
    report = compare(_run(tmp_path / "a", a), _run(tmp_path / "b", b))
    recall = report["metrics"]["emergency_recall"]
    assert (recall["a"], recall["b"], recall["only_a"], recall["only_b"]) == (0.5, 1.0, 0, 5)
    assert recall["p_value"] == pytest.approx(0.0625)
    over = report["metrics"]["over_triage"]
    assert (over["a"], over["b"], over["difference"]) == (0.0, 0.2, 0.2)
    assert report["metrics"]["pass"]["n"] == 20 and len(report["changed"]) == 7


def test_runs_over_different_cases_are_refused(tmp_path):
    a = _run(tmp_path / "a", {"x": (True, "info", "info")})
    b = _run(tmp_path / "b", {"y": (True, "info", "info")})
    with pytest.raises(KmedError, match="같은 평가 세트"):
        compare(a, b)
    with pytest.raises(KmedError, match="cases.jsonl"):
        compare(tmp_path, b)
