"""Plots for run records and ``kmed report``: titled, labelled with units, Korean set in a Korean font.

matplotlib is imported only here, with the Agg backend (no display needed). The Korean font is
NanumGothic (SIL Open Font License) from the ``koreanize-matplotlib`` package, which the
``report`` extra installs with matplotlib (``pip install 'kmed[report]'``). The package is never
imported (its import changes matplotlib's global settings, and needs distutils, which Python 3.12
dropped); only its font files are read. Failing that, a
system NanumGothic or Noto Sans CJK/KR is used. Without any of them a plot would show empty boxes
for Hangul, so ``korean_font()`` refuses with the fix instead.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

from kmed.errors import KmedError

SYSTEM_FONTS = ("NanumGothic", "NanumBarunGothic", "Noto Sans CJK KR", "Noto Sans KR", "Malgun Gothic",
                "AppleGothic", "UnDotum")
FIX = "pip install 'kmed[report]' 로 설치하세요 (개발 중이면 pip install -e \".[report]\"; 시스템 글꼴은 apt install fonts-nanum)."
_state: dict = {}


def _matplotlib():
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import font_manager
        from matplotlib import pyplot as plt
    except ImportError as exc:
        raise KmedError(f"그림을 그릴 matplotlib 이 없어요 ({exc}).", FIX) from exc
    return matplotlib, font_manager, plt


def _covers_hangul(path: str) -> bool:
    from matplotlib.ft2font import FT2Font

    try:
        font = FT2Font(path)
    except (OSError, RuntimeError):
        return False
    return all(font.get_char_index(ord(ch)) for ch in "가힣한글")


def korean_font() -> tuple[str, str]:
    """``(family, file)`` of a font with Hangul glyphs, registered with matplotlib; cached."""
    if "font" in _state:
        return _state["font"]
    _, font_manager, _ = _matplotlib()
    candidates: list[str] = []
    spec = importlib.util.find_spec("koreanize_matplotlib")
    if spec and spec.origin:
        candidates.append(str(Path(spec.origin).parent / "fonts" / "NanumGothic.ttf"))
    system = {f.name: f.fname for f in font_manager.fontManager.ttflist}
    candidates += [system[name] for name in SYSTEM_FONTS if name in system]
    for path in candidates:
        if Path(path).is_file() and _covers_hangul(path):
            font_manager.fontManager.addfont(path)
            _state["font"] = (font_manager.FontProperties(fname=path).get_name(), path)
            return _state["font"]
    raise KmedError("그림의 한글을 그릴 글꼴(NanumGothic, Noto Sans CJK)을 찾지 못했어요.", FIX)


def pyplot():
    """matplotlib.pyplot set up for readable Korean plots."""
    matplotlib, _, plt = _matplotlib()
    family, _ = korean_font()
    matplotlib.rcParams.update({"font.family": [family, "DejaVu Sans"], "axes.unicode_minus": False,
                                "axes.titlesize": 12, "axes.labelsize": 10, "axes.grid": True, "grid.alpha": 0.3})
    return plt


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")  # keeps a legend placed below the axes
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def grouped_bars(groups: list[str], series: dict[str, list[float | None]], path: Path, title: str, xlabel: str,
                 percent: bool = True) -> Path:
    """Horizontal bars: one row per group, one bar per series (a run); values 0–1 shown as %."""
    plt = pyplot()
    n = max(1, len(series))
    height = 0.8 / n
    fig_height = max(2.5, 0.5 * len(groups) * max(1, n * 0.6) + 1.2)
    fig, ax = plt.subplots(figsize=(8, fig_height))
    for i, (name, values) in enumerate(series.items()):
        ys = [g + (i - (n - 1) / 2) * height for g in range(len(groups))]
        xs = [(v or 0) * (100 if percent else 1) for v in values]
        bars = ax.barh(ys, xs, height=height * 0.95, label=name)
        for bar, value in zip(bars, values, strict=True):
            text = "–" if value is None else (f"{value * 100:.0f}" if percent else f"{value:.3g}")
            ax.annotate(text, (bar.get_width(), bar.get_y() + bar.get_height() / 2), xytext=(3, 0),
                        textcoords="offset points", va="center", fontsize=7)
    ax.set_yticks(range(len(groups)), groups, fontsize=8)
    ax.invert_yaxis()
    if percent:
        ax.set_xlim(0, 108)
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    if n > 1:
        below = 0.6 / (fig_height * 0.8)  # about 0.6 inch under the axes: past the tick labels and the axis label
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -below), ncol=1)
    return _save(fig, path)


def frontier(series: dict[str, list[dict]], x: str, y: str, path: Path, title: str, xlabel: str, ylabel: str,
             lower_is_better: bool = True) -> Path:
    """Points joined in order for each series (a run's stages or variants), each labelled."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    xs_all = []
    for name, points in series.items():
        pts = [p for p in points if p.get(x) is not None and p.get(y) is not None]
        if not pts:
            continue
        xs, ys = [p[x] for p in pts], [p[y] for p in pts]
        xs_all += xs
        ax.plot(xs, ys, "o-", label=name, alpha=0.85)
        for p, px, py in zip(pts, xs, ys, strict=True):
            ax.annotate(p.get("label", ""), (px, py), xytext=(4, 4), textcoords="offset points", fontsize=7)
    positive = [v for v in xs_all if v > 0]
    if positive and max(positive) / min(positive) > 50:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel + (" (낮을수록 좋음)" if lower_is_better else " (높을수록 좋음)"))
    ax.set_title(title)
    if len(series) > 1:
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.15))
    return _save(fig, path)


def curve(series: dict[str, list[tuple[float, float]]], path: Path, title: str, xlabel: str, ylabel: str) -> Path:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4))
    for name, points in series.items():
        points = [(a, b) for a, b in points if b is not None and not math.isnan(b)]
        if points:
            ax.plot([a for a, _ in points], [b for _, b in points], label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if len(series) > 1:
        ax.legend(fontsize=7)
    return _save(fig, path)
