"""``kmed eval safety``: over- and under-refusal on the external benchmarks, read by path.

    kmed eval safety [--data ../shared/benchmarks] [--json] [--limit N] [--sets multijail_ko,xstest] [--out DIR]

The benchmark files are never copied into the project; see kmed/eval/safety_eval.py for the sets,
the reply kinds and the metrics.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from kmed.cli.groups import eval_app
from kmed.cli.record import current, recorded

err_console = Console(stderr=True)


@eval_app.command("safety")
@recorded("eval safety", label=("sets", "limit"), folder="out")
def eval_safety(
    data: Path = typer.Option(None, "--data", help="Benchmark folder (default: ../shared/benchmarks next to the project)"),
    limit: int = typer.Option(None, "--limit", min=1, help="At most N items per set (deterministic sample)"),
    sets: str = typer.Option(None, "--sets", help="Comma-separated subset of sets (default: all present)"),
    as_json: bool = typer.Option(False, "--json"),
    out: Path = typer.Option(None, "--out", help="Write report.json and report.md here"),
) -> None:
    """Refusal and redirect rates on MultiJail, SQuARe, XSTest, Do-Not-Answer and MedSafetyBench."""
    from kmed import Assistant
    from kmed.eval.safety_eval import SETS, evaluate, resolve_root, to_markdown

    root = resolve_root(data)  # fail fast, before loading the assistant
    names = [s.strip() for s in sets.split(",") if s.strip()] if sets else list(SETS)
    assistant = Assistant.load()
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err_console, transient=True, disable=not err_console.is_terminal) as bar:

        def progress(name: str, total: int):
            task = bar.add_task(name, total=total)
            return lambda n: bar.advance(task, n)

        rows: list[dict] = []
        report = evaluate(assistant, root, names, limit, progress, cases=rows)
    current().cases(rows)
    if out:
        out.mkdir(parents=True, exist_ok=True)
        (out / "report.json").write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
        (out / "report.md").write_text(to_markdown(report), encoding="utf-8")
    if as_json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
    else:
        Console().print(to_markdown(report), markup=False, highlight=False)
    return report


def register(app: typer.Typer) -> None:
    """The command attaches to the shared ``eval`` group at import time."""
