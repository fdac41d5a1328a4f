"""Nearest-rank percentiles shared by every eval and bench report."""

from kmed.eval.bench import percentiles, seconds_summary
from kmed.eval.stats import nearest_rank, p50_p95


def test_nearest_rank_is_the_ceil_q_n_th_smallest():
    assert nearest_rank([], 0.95) is None
    assert nearest_rank([7.0], 0.95) == 7.0
    assert nearest_rank(list(range(20, 0, -1)), 0.95) == 19
    assert nearest_rank(range(1, 22), 0.95) == 20
    assert nearest_rank([3, 1, 2], 0.0) == 1


def test_reports_keep_their_keys_and_rounding():
    assert p50_p95([], 2) == {"p50": None, "p95": None}
    assert p50_p95([1.23456, 2.34567], 2, "_ms") == {"p50_ms": 1.79, "p95_ms": 2.35}
    assert percentiles([1.0, 2.0, 4.0]) == {"p50_ms": 2.0, "p95_ms": 4.0, "n": 3}
    assert seconds_summary([]) == {"p50": None, "p95": None, "n": 0}
    assert seconds_summary([0.12345] * 21) == {"p50": 0.123, "p95": 0.123, "n": 21}
