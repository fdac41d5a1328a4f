"""KorMedMCQA items read by path, a fixed per-subject sample, and the Korean report (no torch here).

    items = load_items(None, limit=200)   # ../shared/benchmarks/kormedmcqa_train_subset, 200 of 2,004
    items.sample                          # {"kind": "stratified", "per_subject": {...}, "seed": 0, ...}
    print(to_markdown(report))            # accuracy, Wilson 95 % interval, chance level, per subject

KorMedMCQA is CC BY-NC 2.0: read by path for evaluation only, never trained on, never copied into
the repository. Scoring is in kmed/llm/mcqa.py.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from pathlib import Path

from kmed.artifacts import line_errors, read_jsonl_lines
from kmed.errors import ConfigError
from kmed.paths import PROJECT_ROOT

DEFAULT_DATA = PROJECT_ROOT.parent / "shared" / "benchmarks" / "kormedmcqa_train_subset"
DATA_FILE = "kormedmcqa_train_subset.jsonl"
LETTERS = "ABCDE"
SUBJECTS_KO = {"doctor": "의사", "nurse": "간호사", "pharm": "약사", "dentist": "치과의사"}
LICENCE = "KorMedMCQA: CC BY-NC 2.0 (비상업적 평가 전용, 학습·커밋 금지)"
SEED = 0


@dataclass(frozen=True)
class McqaItem:
    id: str
    subject: str
    question: str
    options: tuple[str, ...]  # in letter order: A, B, …
    answer: int  # index into options


@dataclass
class McqaSet:
    """Items in file order, and how they were drawn (``sample``: all, or a per-subject sample)."""

    items: list[McqaItem]
    sample: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self):
        return iter(self.items)

    def __getitem__(self, index):
        return self.items[index]


# ----------------------------------------------------------------------------- data, by path


def data_file(path: str | Path | None = None) -> Path:
    """The JSONL to read: ``path`` itself, or the one JSONL inside the folder ``path`` (default: the shared copy)."""
    path = Path(path) if path else DEFAULT_DATA
    fix = "--data 로 kormedmcqa_train_subset 폴더나 .jsonl 파일 경로를 주세요 (기본: ../shared/benchmarks/kormedmcqa_train_subset)."
    if path.is_file():
        return path
    if path.is_dir():
        found = [path / DATA_FILE] if (path / DATA_FILE).is_file() else sorted(path.glob("*.jsonl"))
        if len(found) == 1:
            return found[0]
        if found:
            raise ConfigError(f"'{path}'에 JSONL 파일이 {len(found)}개 있어 어느 것인지 모르겠어요.", "--data 에 파일 하나를 직접 주세요.")
        raise ConfigError(f"'{path}'에 KorMedMCQA JSONL 파일이 없어요.", fix)
    raise ConfigError(f"KorMedMCQA 데이터 '{path}'가 없어요.", fix)


def parse_item(row: object, line_no: int) -> McqaItem:
    """One JSONL row (keys id, subject, question, A…E, answer) as an item; ValueError names what is wrong."""
    if not isinstance(row, dict):
        raise ValueError("JSON 객체가 아니에요")
    question = row.get("question")
    if not isinstance(question, str) or not question.strip():
        raise ValueError("question 이 비었어요")
    options = []
    for letter in LETTERS:
        text = row.get(letter)
        if text is None or str(text).strip() == "":
            break
        options.append(str(text).strip())
    if len(options) < 2:
        raise ValueError("보기(A, B, …)가 두 개 이상 필요해요")
    answer = row.get("answer")
    if isinstance(answer, int) and not isinstance(answer, bool) and 1 <= answer <= len(options):
        index = answer - 1  # the original dataset numbers answers 1…5
    elif isinstance(answer, str) and answer.strip().upper() in LETTERS[: len(options)]:
        index = LETTERS.index(answer.strip().upper())
    else:
        raise ValueError(f"answer {answer!r} 가 보기 {LETTERS[0]}–{LETTERS[len(options) - 1]} 중 하나가 아니에요")
    return McqaItem(str(row.get("id", f"line{line_no}")), str(row.get("subject") or "unknown"), question.strip(),
                    tuple(options), index)


def _read(path: Path) -> list[McqaItem]:
    items, errors = read_jsonl_lines(path, parse_item)
    if errors:
        raise ConfigError(f"KorMedMCQA 파일에 잘못된 줄이 {len(errors)}개 있어요:\n{line_errors(errors)}",
                          "줄마다 id, subject, question, A–E, answer 키가 있는 JSON 객체여야 해요.")
    if not items:
        raise ConfigError(f"'{path}'에 문항이 없어요.", "--data 로 KorMedMCQA JSONL 을 주세요.")
    return items


def stratified_counts(sizes: dict[str, int], limit: int) -> dict[str, int]:
    """Per-subject quotas proportional to ``sizes`` that sum to ``limit`` (largest remainder, ties by name)."""
    total = sum(sizes.values())
    exact = {s: limit * n / total for s, n in sizes.items()}
    counts = {s: math.floor(q) for s, q in exact.items()}
    for s in sorted(sizes, key=lambda s: (counts[s] - exact[s], s))[: limit - sum(counts.values())]:
        counts[s] += 1
    return counts


def load_items(path: str | Path | None = None, limit: int | None = None, seed: int = SEED) -> McqaSet:
    """All items, or a fixed sample of ``limit``: each subject's share kept, drawn with ``seed``, in file order."""
    source = data_file(path)
    items = _read(source)
    if limit is not None and limit < 0:
        raise ConfigError(f"--limit {limit} 는 쓸 수 없어요.", "0(전체) 이상의 정수를 주세요.")
    sample = {"kind": "all", "n": len(items), "of": len(items), "source": str(source)}
    if not limit or limit >= len(items):
        return McqaSet(items, sample)
    by_subject: dict[str, list[int]] = {}
    for index, item in enumerate(items):
        by_subject.setdefault(item.subject, []).append(index)
    quotas = stratified_counts({s: len(ix) for s, ix in by_subject.items()}, limit)
    rng = random.Random(seed)
    chosen = sorted(i for s in sorted(by_subject) for i in rng.sample(by_subject[s], quotas[s]))
    sample = {"kind": "stratified", "n": limit, "of": len(items), "seed": seed, "per_subject": dict(sorted(quotas.items())),
              "source": str(source), "how": "과목별 비율을 지킨 무작위 표본 (seed 고정, 파일 순서)"}
    return McqaSet([items[i] for i in chosen], sample)


# ----------------------------------------------------------------------------- the report


def wilson(correct: int, n: int, z: float = 1.96) -> list[float]:
    """The Wilson score interval for a proportion (sound at small n and near 0 or 1)."""
    if n == 0:
        return [0.0, 1.0]
    p = correct / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return [round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4)]


def verdict(report: dict) -> str:
    lo, hi = report["ci95"]
    if lo > report["chance"]:
        return "찍기 수준보다 높아요 (신뢰구간 전체가 찍기 수준 위)."
    if hi < report["chance"]:
        return "찍기 수준보다 낮아요 (신뢰구간 전체가 찍기 수준 아래)."
    return "찍기 수준과 구별되지 않아요 (신뢰구간이 찍기 수준을 포함)."


def to_markdown(report: dict) -> str:
    """The Korean summary: accuracy with its interval, the chance level, one line per subject."""
    pct = lambda x: f"{100 * x:.1f}%"  # noqa: E731
    # Interval ends are rounded outward, so a lower end of 19.96% never prints as the 20.0% chance level.
    interval = lambda lo, hi: f"{math.floor(1000 * lo) / 10:.1f}%–{math.ceil(1000 * hi - 1e-9) / 10:.1f}%"  # noqa: E731
    lo, hi = report["ci95"]
    sample = report.get("sample") or {}
    drawn = f"과목별 비율 표본 {sample['n']:,}/{sample['of']:,}문항 (seed {sample['seed']})" if sample.get("kind") == "stratified" \
        else f"전체 {report['n']:,}문항"
    lines = [
        f"# KorMedMCQA ({report.get('model', '모델')}, {report['method']})", "",
        f"정확도 **{pct(report['accuracy'])}** ({report['correct']}/{report['n']}), 95% 신뢰구간 {interval(lo, hi)} · "
        f"찍기 수준 {pct(report['chance'])}", f"판정: {verdict(report)}", f"표본: {drawn}", "",
        "| 과목 | 문항 | 정답 | 정확도 | 95% 신뢰구간 |", "|---|---|---|---|---|",
    ]
    for subject, row in report["per_subject"].items():
        s_lo, s_hi = wilson(row["correct"], row["n"])
        name = f"{SUBJECTS_KO[subject]} ({subject})" if subject in SUBJECTS_KO else subject
        lines.append(f"| {name} | {row['n']} | {row['correct']} | {pct(row['accuracy'])} | {interval(s_lo, s_hi)} |")
    if "seconds" in report:
        lines += ["", f"시간: 불러오기 {report['seconds']['load']:.1f}초, 채점 {report['seconds']['score']:.1f}초"]
    lines += ["", LICENCE]
    return "\n".join(lines) + "\n"
