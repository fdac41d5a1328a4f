"""``kmed compress`` and ``kmed bench llm``.

    kmed compress --base models/kb-teacher --out models/kb-small --recipe configs/compress/default.yaml
    kmed bench llm --shape polyglot-ko-1.3b --layers 4 --new-tokens 8 --json
    kmed compress … --report-to tensorboard|wandb|mlflow   # each stage's numbers and gate, step = stage

Both leave a run record in runs/<UTC time>-<name>/ (kmed/runs.py): each stage's quality, size,
speed, memory and gate in metrics.json, and the frontier plots in report.md.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

from kmed.cli.groups import bench_app
from kmed.cli.record import recorded

console = Console(stderr=True)


@recorded("compress", label=("out",))
def compress(
    base: Path = typer.Option(..., "--base", help="압축할 모델 폴더 (save_pretrained 형식, GPT-NeoX 또는 LLaMA)"),
    out: Path = typer.Option(..., "--out", help="결과 폴더: model/, stages/, manifest.json, report.md"),
    recipe: Path | None = typer.Option(None, "--recipe", help="configs/compress/*.yaml (없으면 int4 양자화만)"),
    overwrite: bool = typer.Option(False, "--overwrite", help="이미 있는 --out 을 (끝났을 때) 바꿔치기"),
    as_json: bool = typer.Option(False, "--json", help="단계별 결과를 JSON으로 출력"),
    report_to: str = typer.Option("none", "--report-to", help="실험 기록: none | tensorboard | wandb | mlflow (실행 기록 폴더에)"),
) -> None:
    """모델을 증류·가지치기·양자화하고, 단계마다 다시 평가해 기준을 넘으면 멈춰요."""
    from kmed.cli.record import record_compression
    from kmed.llm.compression.pipeline import run
    from kmed.llm.compression.recipe import default_recipe, load_recipe

    plan = load_recipe(recipe) if recipe else default_recipe()
    from kmed.eval.grounded_eval import score_model_folder

    result = record_compression(lambda: run(base, out, plan, overwrite=overwrite, qa_scorer=score_model_folder,
                                            log=lambda msg: console.print(msg, soft_wrap=True, markup=False)), out, report_to)
    if as_json:
        typer.echo(json.dumps(result, ensure_ascii=False, indent=2))
    else:
        from kmed.llm.compression.report import markdown_table

        typer.echo(markdown_table(result["stages"]))


@recorded("bench llm", label=("shape", "layers"))
def bench_llm(
    shape: str = typer.Option("polyglot-ko-1.3b", "--shape", help="configs/models.yaml 의 모델 이름"),
    layers: int | None = typer.Option(None, "--layers", help="층 수 (빠르게 볼 때 줄이세요; 기본: 실제 층 수)"),
    new_tokens: int = typer.Option(32, "--new-tokens", help="측정할 생성 토큰 수"),
    prompt_tokens: int = typer.Option(512, "--prompt-tokens", help="근거 프롬프트 길이 (TTFT)"),
    variants: str = typer.Option(",".join(("fp32", "int8", "int4", "pruned+int8", "pruned+int4", "student+int4")),
                                 "--variants", help="쉼표로 구분: fp32,bf16,int8,int4,pruned+int8,pruned+int4,student+int4"),
    workdir: Path | None = typer.Option(None, "--workdir", help="변형 체크포인트를 둘 곳 (기본: runs/bench_llm/…)"),
    rebuild: bool = typer.Option(False, "--rebuild", help="캐시된 변형 체크포인트를 다시 만들기"),
    repeats: int = typer.Option(1, "--repeats", help="변형마다 새 프로세스로 몇 번 잴지 (가장 빠른 회차를 보고; 바쁜 컴퓨터용)"),
    as_json: bool = typer.Option(False, "--json", help="결과를 JSON으로 출력"),
    save: Path | None = typer.Option(None, "--save", help="JSON 결과를 이 파일에도 저장"),
    model: Path | None = typer.Option(None, "--model", help="실제 모델 폴더 (kmed model fetch): 무작위 모양 대신 실제 가중치로 재기"),
    variant: list[Path] = typer.Option([], "--variant", help="--model 과 나란히 잴 kmed compress 결과 폴더 (여러 번 줄 수 있음)"),
    peer: str | None = typer.Option(None, "--peer", help="같은 실행에서 비교할 엔진: llama.cpp (같은 GGUF)"),
    threads: int | None = typer.Option(None, "--threads", help="모든 엔진의 스레드 수 (기본: CPU 수, 최대 8)"),
) -> None:
    """LLM 변형마다 크기·최대 메모리·TTFT·디코딩 속도를 재요 (--model: 실제 모델과 변형, 없으면 실제 모양의 무작위 가중치)."""
    log = lambda msg: console.print(msg, soft_wrap=True, markup=False)  # noqa: E731
    if model is not None:
        from kmed.llm.bench_model import markdown, run_model_bench

        result = run_model_bench(model, variant, prompt_tokens, new_tokens, max(repeats, 2), peer, threads, log=log)
    else:
        from kmed.llm.bench import markdown, run_bench

        names = tuple(v.strip() for v in variants.split(",") if v.strip())
        result = run_bench(shape, layers, new_tokens, prompt_tokens, names, workdir, rebuild, repeats=repeats, log=log)
    text = json.dumps(result, ensure_ascii=False, indent=2)
    if save:
        save.parent.mkdir(parents=True, exist_ok=True)
        save.write_text(text, encoding="utf-8")
    typer.echo(text if as_json else markdown(result))
    return result


def register(app: typer.Typer) -> None:
    app.command("compress")(compress)
    bench_app.command("llm")(bench_llm)
