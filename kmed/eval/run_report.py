"""Pages over run records: each run's own report.md, and ``kmed report RUN…`` comparing several.

    render([read(run)], run_folder)                      # what every recorded command leaves in its folder
    render([read(a), read(b)], out, html=True)           # kmed report a b --html

A page has, for the runs it is given (see docs/evaluation.md, "Run records"):
- a summary table per command (key metrics, date, git commit, machine load);
- consultation runs (``eval grounded``): pass rate per category, as a table and a bar chart, and,
  for runs over the same cases, the paired comparison of ``kmed eval compare`` against the first;
- retrieval runs: every mode's metrics;
- compression and ``bench llm`` runs: the frontier, i.e. quality (held-out perplexity) against size
  on disk, decode speed and peak memory, one point per stage or variant;
- LoRA training runs: the loss curve from the adapter's ``train_log.jsonl``.
"""

from __future__ import annotations

import json
from pathlib import Path

from kmed.errors import KmedError
from kmed.eval import plots
from kmed.eval.page_html import to_html

MiB = 2**20
COLUMNS = {
    "eval grounded": [("set", "set"), ("cases", "cases"), ("pass", "pass_rate"), ("emergency recall", "emergency_recall"),
                      ("over-triage", "over_triage_rate"), ("citation", "citation_coverage"),
                      ("refusal P", "refusal_precision"), ("refusal R", "refusal_recall"), ("p50 ms", "turn_latency_ms/p50")],
    "eval retrieval": [("queries", "queries"), ("hybrid R@5", "modes/hybrid/recall@5"), ("hybrid MRR", "modes/hybrid/mrr"),
                       ("hybrid nDCG@10", "modes/hybrid/ndcg@10"), ("bm25 R@5", "modes/bm25/recall@5"),
                       ("hybrid p50 ms", "modes/hybrid/p50_ms")],
    "eval mcqa": [("method", "method"), ("n", "n"), ("accuracy", "accuracy"), ("95 % CI", "ci95"), ("chance", "chance")],
    "compress": [("status", "status"), ("stages", "stage_count"), ("base ppl", "base/ppl"), ("final ppl", "final/ppl"),
                 ("base MiB", "base/size_mib"), ("final MiB", "final/size_mib"), ("× size", "final/size_ratio"),
                 ("decode tok/s", "final/decode_tok_s"), ("peak RSS MiB", "final/peak_rss_mib")],
    "bench llm": [("shape", "shape"), ("layers", "layers"), ("prompt", "prompt_tokens"),
                  ("fp32 tok/s", "variants/fp32/decode_tok_s"), ("int4 tok/s", "variants/int4/decode_tok_s"),
                  ("goal met by", "goal_met_by")],
    "bench retrieval": [("load s", "load_seconds"), ("build s", "build/seconds"), ("hybrid p50 ms", "query_hybrid/p50_ms"),
                        ("hybrid p95 ms", "query_hybrid/p95_ms"), ("bm25 p50 ms", "query_bm25/p50_ms")],
    "bench agent": [("load s", "load_seconds/median"), ("first turn s", "first_turn_seconds/median"),
                    ("turns", "turn/n"), ("turn p50 ms", "turn/p50_ms"),
                    ("turn p95 ms", "turn/p95_ms")],
    "bench serve": [("ok", "ok"), ("sessions", "config/sessions"), ("turns ok", "turns/ok"), ("errors", "turns/errors"),
                    ("client p50 ms", "latency_client_ms/p50_ms"), ("client p95 ms", "latency_client_ms/p95_ms")],
    "train lora": [("steps", "training/steps"), ("first loss", "training/first_loss"), ("last loss", "training/last_loss"),
                   ("eval loss before", "training/eval_loss_before"), ("eval loss after", "training/eval_loss_after"),
                   ("seconds", "training/seconds")],
    "train make-data": [("records", "records")],
}
CATEGORY_KO = {"emergency": "응급", "urgent": "긴급", "lookalike": "비슷한 증상", "drug_question": "약 질문",
               "routine_report": "일상 증상", "info_question": "정보 질문", "misinformation": "잘못된 정보",
               "self_care_question": "자가 관리", "harmful": "유해 요청", "self_harm": "자해", "out_of_scope": "범위 밖",
               "greeting": "인사", "routine": "일상", "info": "정보", "refusal": "거절"}


# ---- numbers out of a run ------------------------------------------------------------------------


def kind(run: dict) -> str:
    """The command that made the run; older ``--out`` folders without config.json are told by their keys."""
    command = run["config"].get("command")
    if command:
        return command
    m = run["metrics"]
    for key, name in (("pass_rate", "eval grounded"), ("modes", "eval retrieval"), ("stages", "compress"),
                      ("variants", "bench llm"), ("query_hybrid", "bench retrieval"), ("turn", "bench agent"),
                      ("sets", "eval safety")):
        if key in m:
            return name
    return "other"


def get(values: dict, path: str):
    for part in path.split("/"):
        if not isinstance(values, dict) or part not in values:
            return None
        values = values[part]
    return values


def fmt(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(fmt(v) for v in value) or "–"
    return str(value).replace("|", "\\|")


def compression_metrics(stages: list[dict], status: str, failure: str | None = None) -> dict:
    """The pipeline's stage rows as metrics.json: each stage's quality, size, speed, memory and gate."""
    rows, base, prev = [], stages[0] if stages else {}, None
    for step, s in enumerate(stages):
        size = s.get("bytes_on_disk") or 0
        rows.append({
            "step": step, "name": s["name"], "kind": s.get("kind"), "ppl": s.get("ppl"), "qa": s.get("qa"),
            "size_mib": round(size / MiB, 4), "size_ratio": round(size / base["bytes_on_disk"], 4) if base.get("bytes_on_disk") else None,
            "ppl_ratio": round(s["ppl"] / prev["ppl"], 4) if prev and prev.get("ppl") and s.get("ppl") else None,
            "params": s.get("params"), "decode_tok_s": s.get("decode_tok_s"), "ttft_s": s.get("ttft_s"),
            "peak_rss_mib": round(s["peak_rss_bytes"] / MiB, 1) if s.get("peak_rss_bytes") else None,
            "seconds": s.get("seconds"), "gate": s.get("gate"),
        })
        prev = s
    return {"status": status, "failure": failure, "stage_count": max(0, len(rows) - 1),
            "base": rows[0] if rows else None, "final": rows[-1] if rows else None, "stages": rows}


def stage_steps(metrics: dict) -> list[tuple[int, dict]]:
    """What a tracker gets per stage (step = stage number; 0 is the base model)."""
    steps = []
    for row in metrics.get("stages", []):
        values = {f"compress/{k}": row[k] for k in ("ppl", "qa", "size_mib", "size_ratio", "ppl_ratio", "decode_tok_s",
                                                     "ttft_s", "peak_rss_mib") if row.get(k) is not None}
        if row.get("gate"):
            values["gate/passed"] = bool(row["gate"].get("passed"))
        steps.append((row["step"], values))
    return steps


def _normalized(run: dict) -> dict:
    """A ``kmed compress`` output folder (results.json: the pipeline's raw stage rows) read as a run record."""
    m = run["metrics"]
    if kind(run) == "compress" and m.get("stages") and "size_mib" not in m["stages"][0]:
        meta = m.get("meta") or {}
        return {**run, "metrics": compression_metrics(m["stages"], meta.get("status") or m.get("status", ""), meta.get("failure"))}
    return run


def frontier_points(run: dict) -> list[dict]:
    m = run["metrics"]
    if kind(run) == "compress":
        stages = m.get("stages") or []
        return [{"label": s["name"], "ppl": s.get("ppl"), "qa": s.get("qa"), "size_mib": s.get("size_mib"),
                 "decode_tok_s": s.get("decode_tok_s"), "peak_mib": s.get("peak_rss_mib"),
                 "gate": _gate_text(s.get("gate"))} for s in stages]
    variants = m.get("variants") or {}
    return [{"label": name, "ppl": v.get("ppl"), "qa": v.get("qa"), "size_mib": _mib(v.get("bytes_on_disk")),
             "decode_tok_s": v.get("decode_tok_s"), "peak_mib": _mib(v.get("peak_rss_bytes")),
             "gate": "goal met" if v.get("goal_met") else "–"}
            for name, v in (variants.items() if isinstance(variants, dict) else []) if isinstance(v, dict)]


def _mib(value) -> float | None:
    return round(value / MiB, 1) if isinstance(value, (int, float)) and value else None


def _gate_text(gate: dict | None) -> str:
    if not gate:
        return "–"
    if gate.get("passed"):
        return "pass" + (f" ({'; '.join(gate.get('checks') or [])})" if gate.get("checks") else "")
    return "**FAIL**: " + "; ".join(gate.get("failed") or [])


def _loss_curve(run: dict) -> list[tuple[float, float]]:
    out = (run["config"].get("inputs") or {}).get("out")
    log = Path(out) / "train_log.jsonl" if out else None
    if not log or not log.is_file():
        return []
    points = []
    for line in log.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
            points.append((float(row["step"]), float(row["loss"])))
        except (ValueError, KeyError, TypeError):
            continue
    return points


# ---- the page --------------------------------------------------------------------------------------


def _table(header: list[str], rows: list[list]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(fmt(v) for v in row) + " |" for row in rows), ""]


def _provenance(run: dict) -> list:
    c = run["config"]
    git = c.get("git") or {}
    commit = (git.get("commit") or "")[:8] + ("*" if git.get("dirty") else "") or None
    machine = c.get("machine") or {}
    load = machine.get("loadavg") or []
    where = f"{machine.get('cpu_count')} CPU, load {load[0]}" if load else machine.get("cpu_count")
    return [run["name"], (c.get("started_at") or "")[:16].replace("T", " ") or None, commit, where]


class Page:
    """Markdown lines and the PNGs drawn beside them; a plot that cannot be drawn becomes a note, or an error when strict."""

    def __init__(self, out: Path, strict: bool):
        self.out, self.strict, self.lines, self.images = out, strict, [], []

    def plot(self, name: str, caption: str, draw) -> None:
        try:
            draw(self.out / name)
        except KmedError as exc:
            if self.strict:
                raise
            self.lines += [f"(그림 '{name}'을 그리지 못했어요: {exc.message} — {exc.fix})", ""]
            return
        self.images.append(self.out / name)
        self.lines += [f"![{caption}]({name})", ""]


def render(runs: list[dict], out: str | Path, title: str | None = None, html_page: bool = False,
           strict: bool = False) -> Path:
    """Write ``report.md`` (and ``report.html``) with its PNGs into ``out``; returns the Markdown path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    page = Page(out, strict)
    page.lines += [f"# {title or ('실행 비교: ' + ', '.join(r['name'] for r in runs))}", ""]
    for run in runs:
        c = run["config"]
        if not c:
            page.lines.append(f"- `{run['name']}`: {kind(run)}, 실행 기록 이전의 폴더 (config.json 없음: 입력·커밋·기계를 몰라요)")
            continue
        line = " ".join(c["argv"]) if c.get("argv") else c.get("command")
        page.lines.append(f"- `{run['name']}`: `{line}` — {c.get('status', '?')}, {fmt(c.get('seconds'))} s")
    page.lines.append("")
    by_kind: dict[str, list[dict]] = {}
    runs = [_normalized(run) for run in runs]
    for run in runs:
        by_kind.setdefault(kind(run), []).append(run)
    for name, group in by_kind.items():
        _summary(page, name, group)
    if "eval grounded" in by_kind:
        _categories(page, by_kind["eval grounded"])
        _paired(page, by_kind["eval grounded"])
    if "eval retrieval" in by_kind:
        _retrieval(page, by_kind["eval retrieval"])
    frontier_runs = by_kind.get("compress", []) + by_kind.get("bench llm", [])
    if frontier_runs:
        _frontier(page, frontier_runs)
    curves = {r["name"]: _loss_curve(r) for r in by_kind.get("train lora", [])}
    if any(curves.values()):
        page.lines += ["## 학습 손실", ""]
        page.plot("loss.png", "학습 손실", lambda p: plots.curve(curves, p, "LoRA 학습 손실", "스텝", "손실 (토큰당 교차 엔트로피, nat)"))
    if len(runs) == 1:
        _all_numbers(page, runs[0])
    text = "\n".join(page.lines).rstrip() + "\n"
    path = out / "report.md"
    path.write_text(text, encoding="utf-8")
    if html_page:
        (out / "report.html").write_text(to_html(text, title or "kmed report"), encoding="utf-8")
    return path


def _summary(page: Page, name: str, runs: list[dict]) -> None:
    columns = COLUMNS.get(name)
    if name == "eval safety":
        sets = sorted({s for r in runs for s in (r["metrics"].get("sets") or {})})
        columns = [(f"{s} 거절·안내", f"sets/{s}/refused_or_redirected") for s in sets]
    if columns is None:  # a command without a table of its own: its top-level numbers
        keys = [k for r in runs for k, v in r["metrics"].items() if isinstance(v, (int, float))]
        columns = [(k, k) for k in dict.fromkeys(keys)][:8]
    page.lines += [f"## {name}", ""]
    page.lines += _table(["run", "UTC", "commit", "machine", *(h for h, _ in columns)],
                         [_provenance(r) + [get(r["metrics"], p) for _, p in columns] for r in runs])
    for r in runs:
        status = r["config"].get("status")
        if status and status != "complete":
            page.lines += [f"- `{r['name']}`: **{status}** {r['config'].get('error') or r['metrics'].get('failure') or ''}", ""]


def _numbers(values, prefix: str = "") -> list[tuple[str, object]]:
    found = []
    for key, value in values.items():
        if isinstance(value, dict):
            found += _numbers(value, f"{prefix}{key}/")
        elif value is None or isinstance(value, (bool, int, float, str)):
            found.append((f"{prefix}{key}", value))
    return found


def _all_numbers(page: Page, run: dict, limit: int = 80) -> None:
    """Every single value in metrics.json (lists of rows live in cases.jsonl or the tables above)."""
    found = _numbers(run["metrics"])
    page.lines += ["## metrics.json", ""]
    page.lines += _table(["지표", "값"], [[k, v] for k, v in found[:limit]])
    if len(found) > limit:
        page.lines += [f"… 그 밖에 {len(found) - limit}개: metrics.json 을 보세요.", ""]


def _categories(page: Page, runs: list[dict]) -> None:
    cats = sorted({c for r in runs for c in (r["metrics"].get("per_category") or {})})
    if not cats:
        return
    labels = [f"{CATEGORY_KO[c]} ({c})" if c in CATEGORY_KO else c for c in cats]
    sizes = [next((get(r["metrics"], f"per_category/{c}/cases") for r in runs if get(r["metrics"], f"per_category/{c}/cases")), None)
             for c in cats]
    rates = {r["name"]: [get(r["metrics"], f"per_category/{c}/pass_rate") for c in cats] for r in runs}
    counts = {r["name"]: [get(r["metrics"], f"per_category/{c}/cases") for c in cats] for r in runs}
    rows = [[label, *(f"{fmt(rates[n][i])} ({fmt(counts[n][i])})" for n in rates)] for i, label in enumerate(labels)]
    page.lines += ["## 상담 범주별 통과율", "", "각 칸: 통과율 (사례 수).", ""]
    page.lines += _table(["범주", *rates], rows)
    page.plot("categories.png", "범주별 통과율", lambda p: plots.grouped_bars(
        [f"{label}, n={n}" for label, n in zip(labels, sizes, strict=True)], rates, p, "상담 범주별 통과율", "통과율 (%)"))


def _paired(page: Page, runs: list[dict]) -> None:
    from kmed.eval.compare import compare, to_markdown

    with_cases = [r for r in runs if (r["path"] / "cases.jsonl").is_file()]
    if len(with_cases) < 2:
        return
    page.lines += ["## 짝지은 비교 (A = 첫 실행)", "", "같은 사례로 한 실행끼리만: McNemar 정확 검정과 짝지은 부트스트랩 95 % 구간 "
                   "(docs/evaluation.md, \"Reading a comparison\").", ""]
    for run in with_cases[1:]:
        try:
            report = compare(with_cases[0]["path"], run["path"])
            report.update(a=with_cases[0]["name"], b=run["name"])
        except KmedError as exc:
            page.lines += [f"- {with_cases[0]['name']} → {run['name']}: {exc.message}", ""]
            continue
        page.lines += [to_markdown(report).replace("# A/B", "### A/B"), ""]


def _retrieval(page: Page, runs: list[dict]) -> None:
    keys = ["recall@1", "recall@5", "recall@10", "mrr", "ndcg@10", "p50_ms", "p95_ms"]
    modes = list(dict.fromkeys(m for r in runs for m in (r["metrics"].get("modes") or {})))
    page.lines += ["## 검색 모드별", ""]
    page.lines += _table(["run", "mode", *keys], [[r["name"], mode, *(get(r["metrics"], f"modes/{mode}/{k}") for k in keys)]
                                                 for r in runs for mode in modes if mode in r["metrics"].get("modes", {})])
    series = {f"{r['name']} · {k}": [get(r["metrics"], f"modes/{m}/{k}") for m in modes]
              for r in runs for k in (("recall@5",) if len(runs) > 1 else ("recall@5", "mrr", "ndcg@10"))}
    page.plot("retrieval.png", "검색 모드별 지표",
              lambda p: plots.grouped_bars(modes, series, p, "검색 모드별 Recall@5 · MRR · nDCG@10", "값 (%)"))


def _frontier(page: Page, runs: list[dict]) -> None:
    points = {r["name"]: frontier_points(r) for r in runs}
    page.lines += ["## 압축 프런티어: 품질 대 크기·속도·메모리", "",
                   "퍼플렉서티는 보류한 KB 문장에서 (낮을수록 좋음); `bench llm` 은 무작위 가중치라 품질이 없어요.", ""]
    page.lines += _table(["run", "stage / variant", "perplexity", "grounded QA", "size MiB", "decode tok/s", "peak RSS MiB", "gate"],
                         [[n, p["label"], p["ppl"], p["qa"], p["size_mib"], p["decode_tok_s"], p["peak_mib"], p["gate"]]
                          for n, pts in points.items() for p in pts])
    quality = {n: pts for n, pts in points.items() if any(p["ppl"] is not None for p in pts)}
    speed_only = {n: pts for n, pts in points.items() if n not in quality}
    figures = [(quality, "quality_size.png", "size_mib", "ppl", "품질 대 크기", "디스크 크기 (MiB)", "퍼플렉서티", True),
               (quality, "quality_speed.png", "decode_tok_s", "ppl", "품질 대 디코딩 속도", "디코딩 속도 (토큰/초)",
                "퍼플렉서티", True),
               (quality, "quality_memory.png", "peak_mib", "ppl", "품질 대 최대 메모리", "최대 메모리 RSS (MiB)",
                "퍼플렉서티", True),
               (speed_only, "speed_size.png", "size_mib", "decode_tok_s", "디코딩 속도 대 크기", "디스크 크기 (MiB)",
                "디코딩 속도 (토큰/초)", False),
               (speed_only, "memory_size.png", "size_mib", "peak_mib", "최대 메모리 대 크기", "디스크 크기 (MiB)",
                "최대 메모리 RSS (MiB)", True)]
    for series, name, x, y, title, xlabel, ylabel, lower in figures:
        if any(p[x] is not None and p[y] is not None for pts in series.values() for p in pts):
            page.plot(name, title, lambda path, a=(series, x, y, title, xlabel, ylabel, lower): plots.frontier(
                a[0], a[1], a[2], path, a[3], a[4], a[5], lower_is_better=a[6]))
