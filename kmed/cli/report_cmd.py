"""``kmed report RUN…``: one page comparing run records (kmed/eval/run_report.py).

    kmed report runs/20261207-101500-eval-grounded-dev runs/20261207-102300-eval-grounded-dev-no-classifier --html
    kmed report runs/*-compress-* runs/*-bench-llm-* --out reports/frontier

A run is a folder or its name under runs/. The page (report.md, report.html with --html, and its
PNGs) goes to --out, by default runs/reports/<UTC time>/.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import typer
from rich.console import Console

console = Console(stderr=True)


def report(
    run_paths: list[str] = typer.Argument(..., metavar="RUN...", help="실행 기록 폴더 (또는 runs/ 안의 이름), 여러 개"),
    out: Path = typer.Option(None, "--out", help="보고서 폴더 (기본: runs/reports/<UTC 시각>)"),
    as_html: bool = typer.Option(False, "--html", help="report.html 도 만들기"),
    title: str = typer.Option(None, "--title", help="페이지 제목"),
) -> None:
    """실행 기록 여러 개를 한 페이지로 비교해요: 요약 표, 범주별 결과, 압축 프런티어 그림."""
    from kmed import runs
    from kmed.eval.run_report import render

    records = [runs.read(path) for path in run_paths]
    out = out or runs.runs_dir() / "reports" / datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    page = render(records, out, title=title, html_page=as_html, strict=True)
    console.print(f"보고서: {page}" + (f", {page.with_suffix('.html')}" if as_html else ""))
    typer.echo(str(page))


def register(app: typer.Typer) -> None:
    app.command("report")(report)
