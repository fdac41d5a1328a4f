"""``kmed train``: LoRA fine-tuning on grounded QA.

    kmed train lora --base models/polyglot-ko-1.3b --out models/kmed-lora [--data qa.jsonl] [--max-steps 200]
    kmed train lora … --resume                  # continue an interrupted run from its last checkpoint
    kmed train lora … --report-to tensorboard   # loss, lr, tokens/s, peak memory per log step, in the run record
    kmed train make-data --out data/processed/kb_grounded_qa.jsonl   # the KB-generated records, to inspect
    kmed train make-sft --out data/processed/sft   # writers' questions through the agent: train/test by topic
    kmed train merge --adapter models/gemma-kmed-lora --out models/gemma-kmed-merged
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer
from rich.console import Console

from kmed.cli.record import current, recorded, track
from kmed.llm.base import MODEL_CONTEXT_PASSAGES

train_app = typer.Typer(help="LLM 학습 (근거 인용 답변 LoRA)", no_args_is_help=True)
console = Console()


@train_app.command("lora")
@recorded("train lora", label=("out",), folder="run_dir")
def lora(
    base: str = typer.Option(..., "--base", help="기본 모델 폴더 또는 허브 id (GPT-NeoX, LLaMA 계열)"),
    out: Path = typer.Option(..., "--out", help="만들 어댑터 폴더"),
    data: Path | None = typer.Option(None, "--data", help="grounded_qa JSONL (없으면 KB로 만든 데이터)"),
    max_steps: int | None = typer.Option(None, "--max-steps", help="학습 스텝 수 (설정 파일 값을 덮어씀)"),
    config: Path | None = typer.Option(None, "--config", help="학습 설정 YAML (기본: configs/train_lora.yaml)"),
    resume: bool = typer.Option(False, "--resume", help="중단된 학습을 마지막 체크포인트부터 이어서"),
    overwrite: bool = typer.Option(False, "--overwrite", help="--out 폴더가 이미 있으면 새 결과로 바꿈"),
    no_progress: bool = typer.Option(False, "--no-progress", help="진행 막대 숨기기"),
    as_json: bool = typer.Option(False, "--json", help="결과 manifest를 JSON으로 출력"),
    report_to: str = typer.Option("none", "--report-to", help="실험 기록: none | tensorboard | wandb | mlflow"),
    run_dir: Path | None = typer.Option(None, "--run-dir", help="실행 기록 폴더 (기본: runs/<UTC 시각>-train-lora-<out 이름>)"),
) -> None:
    """LoRA 어댑터 학습: 번호 붙은 참고 자료만으로 답하고 자료 번호로 인용하도록."""
    import dataclasses

    from kmed.llm.training.lora import load_train_config, train_lora

    cfg = load_train_config(
        config,
        base=base,
        out=str(out),
        data=str(data) if data else None,
        max_steps=max_steps,
        resume=resume or None,
        overwrite=overwrite or None,
        progress=False if (no_progress or as_json) else None,
    )
    tracker = track(report_to)  # rank 0 only under torchrun
    tracker.log_config(dataclasses.asdict(cfg))
    try:
        manifest = train_lora(cfg, tracker=tracker)
    finally:
        tracker.finish()
    if os.environ.get("RANK", "0") != "0":  # under torchrun, one report is enough
        return
    if as_json:
        typer.echo(json.dumps(manifest, ensure_ascii=False, indent=1))
        return manifest
    t, d = manifest["training"], manifest["data"]
    if resume and not t.get("resumed_from"):
        console.print("이어서 할 체크포인트가 없어서 처음부터 학습했어요.")
    console.print(
        f"[green]완료:[/green] {out}  (스텝 {t['steps']}, 학습 예제 {d['train_examples']}개, "
        f"손실 {t['first_loss']:.3f} → {t['last_loss']:.3f}"
        + (f", 평가 손실 {t['eval_loss_before']:.3f} → {t['eval_loss_after']:.3f}" if t.get("eval_loss_after") is not None else "")
        + f", {t['seconds']:.1f}초)"
    )
    console.print(f"사용: kmed ask \"…\" --model {base} --adapter {out}")
    if current().path:
        console.print(f"실행 기록: {current().path}" + (f" ({report_to})" if report_to != "none" else ""))
    return manifest


@train_app.command("make-data")
@recorded("train make-data", label=("out",))
def make_data(
    out: Path = typer.Option(..., "--out", help="쓸 JSONL 경로"),
    seed: int = typer.Option(42, "--seed"),
) -> None:
    """KB로 grounded QA 학습 레코드를 만들어 JSONL로 저장 (학습 데이터 확인용)."""
    from kmed.llm.training.data import kb_records, write_records

    count = write_records(kb_records(seed=seed), out)
    console.print(f"{count}개 레코드를 {out}에 썼어요.")
    return {"records": count, "out": str(out)}


@train_app.command("make-sft")
@recorded("train make-sft", label=("out",))
def make_sft(
    out: Path = typer.Option(Path("data/processed/sft"), "--out", help="train.jsonl, test.jsonl, manifest.json을 쓸 폴더"),
    seed: int = typer.Option(0, "--seed"),
    aihub: Path | None = typer.Option(None, "--aihub", help="kmed data prepare 의 --out 폴더: AI Hub 학습 묶음을 "
                                      "configs/data_mix.yaml 비율로 섞어요 (기본: data/processed/mix 가 있으면 씀)"),
    no_aihub: bool = typer.Option(False, "--no-aihub", help="AI Hub 묶음이 있어도 섞지 않기"),
    context_passages: int = typer.Option(MODEL_CONTEXT_PASSAGES, "--context-passages", min=1,
                                         help="질문마다 붙일 참고 문단 수: 모델이 답할 때 읽는 수와 같게"),
    no_progress: bool = typer.Option(False, "--no-progress", help="진행 막대 숨기기"),
) -> None:
    """작성자들이 쓴 질문을 실제 상담에 넣어 근거 인용 SFT 데이터를 만들어요 (주제별로 학습/시험 분리)."""
    from rich.progress import Progress

    from kmed.agent.assistant import Assistant
    from kmed.agent.sft_data import (
        build_sft,
        mix_prepared_aihub,
        read_questions,
        recording_composer,
        write_sft,
    )
    from kmed.errors import ConfigError
    from kmed.paths import PROJECT_ROOT

    if aihub is not None and not (aihub / "mix").is_dir():
        raise ConfigError(f"{aihub}/mix 가 없어요.", "먼저 kmed data prepare --aihub-dir data/raw/aihub --out <폴더> 를 실행하세요.")
    if aihub is None and not no_aihub and (PROJECT_ROOT / "data" / "processed" / "mix").is_dir():
        aihub = PROJECT_ROOT / "data" / "processed"
    questions = read_questions()
    assistant = Assistant.load(generator=recording_composer(context_passages=context_passages))
    with Progress(disable=no_progress, console=console) as bar:
        task = bar.add_task("SFT 데이터", total=len(questions))
        result = build_sft(assistant, seed=seed, questions=questions, progress=lambda: bar.advance(task))
    info: dict = {"seed": seed, "questions": len(questions), "aihub": None, "context_passages": context_passages}
    if aihub is not None and not no_aihub:
        result["splits"]["train"], info["aihub"] = mix_prepared_aihub(result["splits"]["train"], aihub)
        console.print(f"AI Hub 혼합 {info['aihub']['taken']} (비율 {info['aihub']['shares']})")
        for note in info["aihub"]["notes"]:
            console.print(f"  · {note}")
    manifest = write_sft(result, out, info)
    console.print(f"{out}: 학습 {manifest['records']['train']}개, 시험 {manifest['records']['test']}개 "
                  f"(주제 {manifest['topics']['train']} / {manifest['topics']['test']}) {manifest['kinds']}")
    return manifest


@train_app.command("merge")
@recorded("train merge", label=("out",))
def merge(
    adapter: Path = typer.Option(..., "--adapter", help="kmed train lora 로 만든 어댑터 폴더"),
    out: Path = typer.Option(..., "--out", help="병합한 모델을 쓸 폴더"),
    base: str | None = typer.Option(None, "--base", help="기본 모델 (기본: 어댑터를 학습한 모델)"),
    overwrite: bool = typer.Option(False, "--overwrite", help="--out 폴더가 이미 있으면 새 결과로 바꿈"),
) -> None:
    """LoRA 어댑터를 기본 모델에 합쳐 하나의 모델 폴더로 저장해요 (압축·서빙용)."""
    from kmed.llm.training.merge import merge_adapter

    manifest = merge_adapter(adapter, out, base=base, overwrite=overwrite)
    console.print(f"{out}: {manifest['base_model']} + {adapter} 병합 ({manifest['parameters']:,} 파라미터)")
    return manifest


def register(app: typer.Typer) -> None:
    app.add_typer(train_app, name="train")
