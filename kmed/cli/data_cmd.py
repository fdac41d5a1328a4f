"""``kmed data prepare``: turn a user's AI Hub download into passages, KG edges, training and eval data.

    kmed data prepare --aihub-dir data/raw/aihub [--out data/processed] [--config configs/data_mix.yaml]

Prints progress bars, then a report: files found, records loaded, skipped (with reasons), duplicates
removed, PII redacted, records per split and the training mix. Every skipped file is listed in
``<out>/skipped.jsonl`` and logged to ``<out>/prepare.log``. A second run with unchanged inputs does
nothing (``--force`` redoes it).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from kmed.paths import default_processed_dir

console = Console()


class _RichProgress:
    """The pipeline's progress hooks drawn as rich bars."""

    def __init__(self, progress: Progress):
        self.progress = progress
        self.task = None
        self.shown = False  # the display starts with the first bar, so an unchanged run prints none

    def start(self, label: str, total: int | None) -> None:
        if not self.shown:
            self.progress.start()
            self.shown = True
        self.task = self.progress.add_task(label, total=total)

    def advance(self, n: int = 1) -> None:
        if self.task is not None:
            self.progress.advance(self.task, n)

    def stop(self) -> None:
        if self.task is not None:
            task = self.progress.tasks[self.task]
            self.progress.update(self.task, total=task.completed or 1, completed=task.completed or 1)
        self.task = None


def _print_report(data: dict) -> None:
    from kmed.data.aihub.records import dataset_title

    table = Table(title="데이터셋별 결과", show_lines=False)
    for column in ("데이터셋", "찾은 파일", "읽은 기록", "train", "validation", "test"):
        table.add_column(column, justify="left" if column == "데이터셋" else "right")
    datasets = sorted(set(data["found"]) | set(data["per_split"]))
    for dataset in datasets:
        loaded = sum(v for k, v in data["loaded"].items() if k.split("/")[0] == dataset)
        split = data["per_split"].get(dataset, {})
        name = dataset_title(dataset) if dataset != "unknown" else "알 수 없음"
        table.add_row(name, str(data["found"].get(dataset, 0)), str(loaded), *(str(split.get(s, 0)) for s in ("train", "validation", "test")))
    console.print(table)
    if data["skipped"]:
        console.print("[yellow]건너뛴 항목[/yellow] (전체 목록: skipped.jsonl)")
        for reason, entry in data["skipped"].items():
            console.print(f"  • {entry['message']} [dim]({reason})[/dim]: {entry['count']}건, 예: {entry['examples'][0]}", soft_wrap=True)
    dedup = data["deduplicated"]
    console.print(f"중복 제거: 완전 중복 {dedup.get('exact', 0)}건, 유사 중복 {dedup.get('near', 0)}건")
    if data["pii_redacted"]:
        console.print("개인정보 가림: " + ", ".join(f"{k} {v}건" for k, v in data["pii_redacted"].items()))
    mix = data.get("mix") or {}
    if mix:
        shares = ", ".join(f"{b} {mix['taken_train'].get(b, 0)}건 ({share:.0%})" for b, share in mix["shares"].items())
        console.print(f"학습 혼합(train): {shares}")
    for note in data["notes"]:
        console.print(f"[yellow]참고:[/yellow] {note}", soft_wrap=True)


def _entity_linker(kb):
    """``text → entity ids`` for the AI Hub pipeline: the KG floor's EntityLinker, negated mentions left out."""
    from kmed.kg.linker import EntityLinker

    return EntityLinker.from_kb(kb).entity_ids


def prepare_cmd(
    aihub_dir: Path = typer.Option(..., "--aihub-dir", help="AI Hub에서 내려받은 폴더 (어느 상위 폴더든 괜찮아요)"),
    out: Path = typer.Option(None, "--out", help="결과 폴더 (기본: data/processed)"),
    config: Path = typer.Option(None, "--config", help="혼합·분할 설정 YAML (기본: configs/data_mix.yaml)"),
    link: bool = typer.Option(True, "--link/--no-link", help="지식베이스 개체 연결 (KG 동시출현 간선과 문단 entity_ids)"),
    force: bool = typer.Option(False, "--force", help="입력이 그대로여도 다시 만들기"),
    as_json: bool = typer.Option(False, "--json", help="보고서를 JSON으로 출력"),
) -> None:
    """Prepare AI Hub data: passages, KG edges, training mix and evaluation sets."""
    from kmed.data.aihub.config import PipelineConfig
    from kmed.data.aihub.pipeline import prepare

    out_dir = out or default_processed_dir()
    pipeline_config = PipelineConfig.load(config)
    out_dir.mkdir(parents=True, exist_ok=True)
    logger = logging.getLogger("kmed.data.aihub")
    handler = logging.FileHandler(out_dir / "prepare.log", mode="w", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    bars = _RichProgress(Progress(*columns, console=console, transient=False, disable=as_json))
    try:
        result = prepare(aihub_dir, out_dir, pipeline_config, link=link, force=force, progress=bars, make_linker=_entity_linker)
    finally:
        if bars.shown:
            bars.progress.stop()
        logger.removeHandler(handler)
        handler.close()
    if result.unchanged:
        if as_json:
            print(json.dumps({"unchanged": True, **result.manifest["counts"]}, ensure_ascii=False, indent=2))
        else:
            console.print(f"[green]입력이 바뀌지 않아 다시 만들지 않았어요.[/green] 결과: {out_dir} (다시 만들려면 --force)")
        return
    data = result.report.to_dict()
    if as_json:
        print(json.dumps({"unchanged": False, **data}, ensure_ascii=False, indent=2))
    else:
        _print_report(data)
    if not data["loaded"]:
        console.print("[red]읽은 기록이 하나도 없어요.[/red] 폴더가 맞는지, 건너뛴 이유를 확인해 주세요.")
        raise typer.Exit(1)
    if not as_json:
        console.print(
            f"[green]✓[/green] {out_dir} 에 저장했어요: 검색 문단 {data['written'].get('passages.jsonl', 0)}개 "
            f"(kmed build index --with-processed 로 인덱스에 추가), 평가 세트는 eval/, 학습 혼합은 mix/."
        )


def register(app: typer.Typer) -> None:
    data_app = typer.Typer(help="AI Hub 데이터 준비 (정제·분할·혼합·검색 문단)", no_args_is_help=True)
    data_app.command("prepare")(prepare_cmd)
    app.add_typer(data_app, name="data")
