"""``kmed kb validate``, ``kmed kb stats`` and ``kmed kb sample-claims``: check, count and sample the
curated knowledge base."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

from kmed.data.kb import load_kb

app = typer.Typer(help="지식베이스(data/kb) 검사와 통계", no_args_is_help=True)
console = Console()


@app.command()
def validate(kb_dir: Path = typer.Option(None, "--kb", help="KB folder (default: data/kb)")) -> None:
    """Validate every KB file; print each error with its file, entry and field."""
    kb, errors = load_kb(kb_dir)
    if errors:
        for error in errors:
            console.print(f"[red]✗[/red] {error}", soft_wrap=True)
        console.print(f"[red]{len(errors)}개의 오류[/red]가 있어요. 위 파일을 고친 뒤 다시 'kmed kb validate'를 실행하세요.")
        raise typer.Exit(1)
    stats = kb.stats()
    console.print(
        f"[green]✓[/green] KB OK: 질환 {stats['conditions']}, 증상 {stats['symptoms']}, 약 {stats['drugs']}, "
        f"진료과 {stats['departments']}, 검사 {stats['tests']}, 주제 {stats['topics']}, "
        f"응급 규칙 {stats['red_flag_rules']}, 표면형 {stats['surface_forms']}"
    )


@app.command()
def stats(
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    kb_dir: Path = typer.Option(None, "--kb", help="KB folder (default: data/kb)"),
) -> None:
    """Count KB entries and the knowledge graph built from them."""
    from kmed.kg.graph import build_graph

    kb, errors = load_kb(kb_dir)
    if errors:
        console.print(f"[red]KB에 {len(errors)}개의 오류가 있어요.[/red] 'kmed kb validate'로 확인하세요.")
        raise typer.Exit(1)
    counts = kb.stats()
    graph = build_graph(kb)
    counts["kg_nodes"] = graph.number_of_nodes()
    counts["kg_edges"] = graph.number_of_edges()
    if as_json:
        print(json.dumps(counts, ensure_ascii=False, indent=2))
    else:
        for key, value in counts.items():
            console.print(f"{key:>15}: {value}")


@app.command("sample-claims")
def sample_claims_cmd(
    n: int = typer.Option(120, "--n", min=1, help="How many claims to draw."),
    seed: int = typer.Option(11, "--seed", help="Random seed: the same KB and seed give the same sample."),
    out: Path = typer.Option(..., "--out", help="Output file: .jsonl (default) or .md checklist."),
    kb_dir: Path = typer.Option(None, "--kb", help="KB folder (default: data/kb)"),
) -> None:
    """Draw a seeded, stratified sample of checkable claims (doses, contraindications, interactions,
    thresholds, schedules, red-flag reasons, hotlines) for a second medical read."""
    from kmed.data.claims import extract_claims, sample_claims, write_claims

    kb, errors = load_kb(kb_dir)
    if errors:
        console.print(f"[red]KB에 {len(errors)}개의 오류가 있어요.[/red] 'kmed kb validate'로 확인하세요.")
        raise typer.Exit(1)
    claims = sample_claims(kb, n=n, seed=seed)
    path = write_claims(claims, out)
    counts: dict[str, int] = {}
    for c in claims:
        counts[c.entry_type] = counts.get(c.entry_type, 0) + 1
    console.print(f"claims {len(claims)} of {len(extract_claims(kb))} → {path} "
                  f"({', '.join(f'{k} {v}' for k, v in sorted(counts.items()))})")
