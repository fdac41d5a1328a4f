"""``kmed kg import-dur DIR``: map the official DUR files a user downloaded onto KB drugs as KG edges.

    kmed kg import-dur ~/Downloads/dur                 # → data/processed/kg_edges/dur.jsonl
    kmed kg import-dur ~/Downloads/dur --json --top 50

The report lists, per DUR table, the rows read, the rows whose ingredients map onto KB drugs and the
edges written, then the most frequent ingredient names that matched no KB drug. ``kmed build all --with-processed``
merges every ``data/processed/kg_edges/*.jsonl`` into the graph.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from kmed.cli.groups import kg_app
from kmed.data.kb import KBValidationError
from kmed.errors import KmedError

console = Console()


def _print_report(data: dict, top: int) -> None:
    table = Table(title="DUR 가져오기 결과")
    for column, justify in (
        ("DUR 표", "left"),
        ("파일", "left"),
        ("읽은 행", "right"),
        ("KB 약과 연결된 행", "right"),
        ("간선", "right"),
    ):
        table.add_column(column, justify=justify)
    for row in data["tables"]:
        table.add_row(
            row["label"], row["file"], f"{row['rows']:,}", f"{row['matched']:,}", f"{row['edges']:,}"
        )
    totals = data["totals"]
    table.add_row(
        "[bold]합계[/bold]",
        "",
        f"{totals['rows']:,}",
        f"{totals['matched']:,} ({totals['coverage_pct']}%)",
        f"{data['edges_written']:,}",
    )
    console.print(table)
    if data["unmatched_top"]:
        missing = Table(
            title=f"KB 약에 연결되지 않은 성분 (상위 {min(top, len(data['unmatched_top']))}개 / 전체 {data['unmatched_distinct']:,}개)"
        )
        missing.add_column("성분명")
        missing.add_column("행 수", justify="right")
        for item in data["unmatched_top"]:
            missing.add_row(item["name"], f"{item['rows']:,}")
        console.print(missing)
    for warning in data["warnings"]:
        console.print(f"[yellow]건너뜀:[/yellow] {warning}", soft_wrap=True)
    if data["skipped_files"]:
        console.print(
            f"[yellow]DUR 표로 알아보지 못한 파일:[/yellow] {', '.join(data['skipped_files'])}",
            soft_wrap=True,
        )
    if data["output"]:
        console.print(
            f"[green]✓[/green] 간선 {data['edges_written']:,}개를 {data['output']}에 썼어요. 'kmed build all --with-processed'로 그래프와 인덱스에 반영하세요."
        )
    else:
        console.print(f"간선 {data['edges_written']:,}개를 만들었어요(--dry-run이라 파일은 쓰지 않았어요).")


def register(app: typer.Typer) -> None:
    """Add ``import-dur`` to the shared ``kmed kg`` group."""

    @kg_app.command("import-dur")
    def import_dur_command(
        folder: Path = typer.Argument(..., help="내려받은 DUR 파일(CSV/XLSX)이 든 폴더"),
        out: Path = typer.Option(None, "--out", help="간선 파일 (기본: data/processed/kg_edges/dur.jsonl)"),
        kb_dir: Path = typer.Option(None, "--kb", help="KB 폴더 (기본: data/kb)"),
        top: int = typer.Option(20, "--top", min=0, help="보여 줄 미연결 성분 수"),
        dry_run: bool = typer.Option(False, "--dry-run", help="파일을 쓰지 않고 결과만 보여 줘요"),
        as_json: bool = typer.Option(False, "--json", help="결과를 JSON으로 출력"),
    ) -> None:
        """공공데이터포털의 DUR 성분 파일을 KB 약에 연결해 지식그래프 간선으로 저장해요."""
        from kmed.data.dur import import_dur
        from kmed.data.kb import load_kb_or_fail

        try:
            kb = load_kb_or_fail(kb_dir)
        except KBValidationError as exc:
            raise KmedError(
                f"지식베이스에 오류가 {len(exc.errors)}개 있어 DUR을 연결할 수 없어요.",
                "'kmed kb validate'로 오류를 확인해 고친 뒤 다시 실행하세요.",
            ) from exc
        report = import_dur(folder, kb=kb, out_path=out, write=not dry_run)
        data = report.to_dict(top=top)
        if as_json:
            print(json.dumps(data, ensure_ascii=False, indent=2))
        else:
            _print_report(data, top)
