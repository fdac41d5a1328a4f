"""``kmed eval {retrieval,grounded}`` and ``kmed bench {retrieval,agent}``.

    kmed eval retrieval --json                 # data/eval/retrieval_dev.jsonl
    kmed eval grounded --json [--set dev|test|regression] [--model PATH] [--out DIR] [--no-classifier]
    kmed eval grounded --report-to tensorboard|wandb|mlflow   # the summary metrics, in the run folder
    kmed eval answers [--model PATH] [--limit N] [--out DIR]   # answer quality on the SFT test topics
    kmed eval compare RUN_A RUN_B [--json]     # paired significance of two runs (folders or names in runs/)
    kmed bench retrieval --json [--scales 100000,1000000]
    kmed bench agent --json

Reports print as JSON with --json. Every run but compare leaves a run record (kmed/runs.py) in
runs/<UTC time>-<name>/, or in --out DIR when given (then also report.json).
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from kmed.cli.groups import bench_app, eval_app
from kmed.cli.record import current, recorded, track

console = Console()


def _emit(report: dict, as_json: bool, out: Path | None, title: str) -> None:
    if out:
        out.mkdir(parents=True, exist_ok=True)
        (out / "report.json").write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
        (out / "report.md").write_text(to_markdown(report, title), encoding="utf-8")
    if as_json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
    else:
        console.print(to_markdown(report, title), markup=False, highlight=False)


def to_markdown(report: dict, title: str) -> str:
    lines = [f"# {title}", ""]
    if "modes" in report:
        keys = ["recall@1", "recall@5", "recall@10", "mrr", "ndcg@10", "p50_ms", "p95_ms"]
        lines += ["| mode | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
        for mode, metrics in report["modes"].items():
            lines.append(f"| {mode} | " + " | ".join(str(metrics.get(k)) for k in keys) + " |")
        lines.append(f"\n{report['queries']} queries.")
    else:
        for key, value in report.items():
            if key != "failures":
                lines.append(f"- **{key}**: {json.dumps(value, ensure_ascii=False)}")
        if isinstance(report.get("failures"), str):
            lines.append(f"\nfailures: {report['failures']}")
        elif report.get("failures"):
            lines.append(f"\n{len(report['failures'])} failing cases (first 10):")
            for row in report["failures"][:10]:
                lines.append(f"- {row.get('id')}: {json.dumps(row.get('checks', row), ensure_ascii=False)[:200]}")
    return "\n".join(lines) + "\n"


@eval_app.command("retrieval")
@recorded("eval retrieval", label=("data",), folder="out")
def eval_retrieval(
    data: Path = typer.Option(None, "--data", help="JSONL dev set (default: data/eval/retrieval_dev.jsonl)"),
    as_json: bool = typer.Option(False, "--json"),
    out: Path = typer.Option(None, "--out", help="Write report.json and report.md here"),
) -> None:
    """Recall@1/5/10, MRR, nDCG@10 for BM25, dense, KG and hybrid."""
    from kmed import Assistant
    from kmed.eval.retrieval_eval import evaluate, load_cases

    cases = load_cases(data)
    rows: list[dict] = []
    report = evaluate(Assistant.load(), cases, rows=rows)
    current().cases(rows)
    if not as_json:
        table = Table(title=f"retrieval ({len(cases)} queries)")
        keys = ["recall@1", "recall@5", "recall@10", "mrr", "ndcg@10", "p50_ms"]
        table.add_column("mode")
        for key in keys:
            table.add_column(key)
        for mode, metrics in report["modes"].items():
            table.add_row(mode, *(str(metrics[k]) for k in keys))
        console.print(table)
    if as_json or out:
        _emit(report, as_json, out, "Retrieval evaluation")
    return report


@eval_app.command("grounded")
@recorded("eval grounded", label=("data", "which", "no_classifier", "model"), folder="out")
def eval_grounded(
    which: str = typer.Option("dev", "--set", help="dev | test (locked: report only) | regression"),
    data: Path = typer.Option(None, "--data", help="JSONL case file (overrides --set)"),
    show_failures: bool = typer.Option(False, "--show-failures", help="List failing cases of the locked test set too"),
    no_classifier: bool = typer.Option(False, "--no-classifier", help="Without the learned layer (rules and KG only), for A/B"),
    model: str = typer.Option(None, "--model", help="Evaluate with this LLM instead of the extractive default"),
    adapter: str = typer.Option(None, "--adapter"),
    as_json: bool = typer.Option(False, "--json"),
    out: Path = typer.Option(None, "--out"),
    report_to: str = typer.Option("none", "--report-to", help="none | tensorboard | wandb | mlflow (in the run folder)"),
) -> None:
    """Case pass rate, emergency recall, over-triage, citation coverage, refusal precision/recall, latency."""
    from kmed import Assistant
    from kmed.errors import KmedError
    from kmed.eval.grounded_eval import SETS, evaluate, load_cases
    from kmed.llm.factory import load_generator

    if data is None and which not in SETS:
        raise KmedError(f"평가 세트 '{which}'를 몰라요.", f"--set 은 {', '.join(SETS)} 중 하나예요.")
    tracker = track(report_to)
    try:
        cases = load_cases(data or SETS[which])
        assistant = Assistant.load(generator=load_generator(model, adapter=adapter))
        if no_classifier:
            assistant.classifier = None
        rows: list[dict] = []
        report = evaluate(assistant, cases, rows)
        report["set"] = str(data) if data else which
        if which == "test" and data is None and not show_failures:
            report["failures"] = f"{len(report['failures'])}건 (잠긴 시험 세트: --show-failures 로만 표시)"
            rows = [{k: v for k, v in r.items() if k not in ("turns", "answer")} for r in rows]  # outcomes only
        _emit(report, as_json, out, "Grounded consultation evaluation")
        current().cases(rows)  # what kmed eval compare pairs
        keys = ("pass_rate", "emergency_recall", "over_triage_rate", "citation_coverage", "quoted_fragments",
                "refusal_precision", "refusal_recall", "turn_latency_ms", "cases")
        tracker.log_metrics({f"eval/{k}": report[k] for k in keys if k in report})
    finally:
        tracker.finish()
    return {k: v for k, v in report.items() if k != "failures" or isinstance(v, str)}  # the failures are in cases.jsonl


@eval_app.command("answers")
@recorded("eval answers", label=("model",), folder="out")
def eval_answers(
    model: str = typer.Option(None, "--model", help="이 모델로 답해요 (없으면 추출형 작성기)"),
    adapter: str = typer.Option(None, "--adapter"),
    data: Path = typer.Option(None, "--data", help="kmed train make-sft 의 test.jsonl (기본: data/processed/sft/test.jsonl)"),
    limit: int = typer.Option(None, "--limit", min=1, help="앞에서부터 이만큼의 질문만"),
    as_json: bool = typer.Option(False, "--json"),
    out: Path = typer.Option(None, "--out"),
    no_progress: bool = typer.Option(False, "--no-progress"),
) -> None:
    """Fact recall, faithfulness, citation validity/coverage, fluency and latency on held-out SFT topics."""
    from rich.progress import Progress

    from kmed import Assistant
    from kmed.eval.answer_eval import DEFAULT_DATA, evaluate_answers, load_questions
    from kmed.llm.factory import load_generator

    questions = load_questions(data or DEFAULT_DATA, limit)
    assistant = Assistant.load(generator=load_generator(model, adapter=adapter))
    rows: list[dict] = []
    with Progress(disable=no_progress or as_json, console=console) as bar:
        task = bar.add_task("답변 평가", total=len(questions))
        report = evaluate_answers(assistant, questions, rows, progress=lambda: bar.advance(task))
    report["model"] = model or "extractive"
    report["data"] = str(data or DEFAULT_DATA)
    _emit(report, as_json, out, "Answer quality")
    current().cases(rows)  # what kmed eval compare pairs
    return report


@eval_app.command("compare")
def eval_compare(
    run_a: Path = typer.Argument(..., help="A: an eval grounded run (its folder, or its name in runs/)"),
    run_b: Path = typer.Argument(..., help="B: the same set, another build or setting"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Pair two runs case by case: each metric's difference, paired bootstrap interval and McNemar p."""
    from kmed.eval.compare import compare, to_markdown
    from kmed.runs import resolve

    report = compare(resolve(run_a), resolve(run_b))
    if as_json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
    else:
        console.print(to_markdown(report), markup=False, highlight=False)


@bench_app.command("retrieval")
@recorded("bench retrieval", label=("scales",), folder="out")
def bench_retrieval_cmd(
    scales: str = typer.Option("100000", "--scales", help="Synthetic corpus sizes, comma-separated (e.g. 100000,1000000)"),
    no_rebuild: bool = typer.Option(False, "--no-rebuild", help="Skip timing a fresh index build"),
    as_json: bool = typer.Option(False, "--json"),
    out: Path = typer.Option(None, "--out"),
) -> None:
    """Build time, query latency after load, and synthetic-scale latency and memory."""
    from kmed.eval.bench import bench_retrieval
    from kmed.eval.retrieval_eval import DEFAULT_DATA, load_cases

    queries = [c.query for c in load_cases(DEFAULT_DATA)] if DEFAULT_DATA.exists() else ["두통", "배가 아파요"]
    sizes = [int(s) for s in scales.split(",") if s.strip()]
    report = bench_retrieval(queries, sizes, rebuild=not no_rebuild)
    _emit(report, as_json, out, "Retrieval benchmark")
    return report


@bench_app.command("agent")
@recorded("bench agent", folder="out")
def bench_agent_cmd(
    as_json: bool = typer.Option(False, "--json"),
    out: Path = typer.Option(None, "--out"),
    model: str | None = typer.Option(None, "--model", help="답변 생성 모델 (없으면 추출형 작성기); ttft_s·answer_s 를 더해요"),
    limit: int | None = typer.Option(None, "--limit", help="--model: 생성까지 간 답변 수 (기본 20); 없으면 대화 수 상한"),
) -> None:
    """Load time (fresh process, built indexes) and p50/p95 turn latency; with --model, TTFT and answer time."""
    from kmed.eval.bench import bench_agent
    from kmed.eval.grounded_eval import DEFAULT_DATA, load_cases

    turns = [c["turns"] for c in load_cases(DEFAULT_DATA)] if DEFAULT_DATA.exists() else [["어제부터 열이 나고 목이 아파요"]]
    if model:
        report = bench_agent(turns, model, max_generated=limit or 20)
    else:
        report = bench_agent(turns[:limit] if limit else turns)
    _emit(report, as_json, out, "Agent benchmark")
    return report


@eval_app.command("mcqa")
@recorded("eval mcqa", label=("model", "method"))
def eval_mcqa(
    model: Path = typer.Option(..., "--model", help="Hugging Face 모델 폴더나 kmed compress 결과 폴더"),
    data: Path = typer.Option(None, "--data", help="KorMedMCQA 폴더나 .jsonl (기본: ../shared/benchmarks/kormedmcqa_train_subset)"),
    limit: int = typer.Option(200, "--limit", min=0, help="과목별 비율을 지킨 고정 표본 크기 (0: 전체 2,004문항)"),
    method: str = typer.Option("option_loglik", "--method", help="option_loglik (보기 로그우도, 글자당) | next_letter (다음 글자 A–E)"),
    batch_size: int = typer.Option(8, "--batch-size", min=1, help="한 번에 돌리는 문항 수"),
    threads: int = typer.Option(None, "--threads", min=1, help="torch CPU 스레드 수 (기본: torch 기본값)"),
    as_json: bool = typer.Option(False, "--json"),
) -> dict:
    """KorMedMCQA 정확도: 과목별, 95% 신뢰구간과 찍기 수준(20%)을 함께 (평가 전용, CC BY-NC)."""
    from kmed.llm.mcqa import evaluate, to_markdown

    if threads:
        import torch

        torch.set_num_threads(threads)
    report = evaluate(model, data, limit=limit, method=method, batch_size=batch_size)
    if as_json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
    else:
        console.print(to_markdown(report), markup=False, highlight=False)
    return report


def register(app: typer.Typer) -> None:
    """Commands attach to the shared groups at import time."""
