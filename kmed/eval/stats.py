"""The latency summaries every eval and bench report shares: the median and a nearest-rank percentile.

    nearest_rank([5, 1, 3], 0.95)   # 5: the ceil(0.95·n)-th smallest value, the largest when n is small
    p50_p95([1.0, 2.0], 3, "_ms")   # {"p50_ms": 1.5, "p95_ms": 2.0}
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable


def nearest_rank(values: Iterable[float], q: float) -> float | None:
    """The ``q`` quantile by nearest rank: the ceil(q·n)-th smallest value; ``None`` for no values."""
    ordered = sorted(values)
    if not ordered:
        return None
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def p50_p95(values: Iterable[float], digits: int, suffix: str = "") -> dict:
    """Median and nearest-rank 95th percentile, rounded to ``digits``, under ``p50``/``p95`` + ``suffix``."""
    ordered = sorted(values)
    if not ordered:
        return {f"p50{suffix}": None, f"p95{suffix}": None}
    return {f"p50{suffix}": round(statistics.median(ordered), digits),
            f"p95{suffix}": round(nearest_rank(ordered, 0.95), digits)}
