"""Training checkpoints for ``kmed train lora --resume`` (the result is published with ``kmed.artifacts.swap_in``).

    <out>.partial/checkpoints/step-00000050/   adapter_model.safetensors, optimizer.pt, trainer_state.json

Each checkpoint is written to a hidden temp folder and renamed (``kmed.artifacts.atomic_folder``), so
a crash mid-write leaves no folder that looks complete; ``latest_checkpoint`` only ever sees finished
ones, and the next save removes what a crash left behind.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

from kmed.artifacts import atomic_folder
from kmed.errors import ConfigError

# Settings that change what is being trained; a resumed run must agree on all of them.
_RESUME_KEYS = ("base", "data", "lora_r", "lora_alpha", "target_modules", "max_seq_len", "batch_size",
                "grad_accum", "seed", "distractors", "unanswerable_every", "eval_fraction", "quantize")


def checkpoints(work: Path) -> list[Path]:
    found = [p for p in (work / "checkpoints").glob("step-*") if (p / "trainer_state.json").is_file()]
    return sorted(found, key=lambda p: int(p.name.split("-")[1]))


def save_checkpoint(work: Path, peft_model, optimizer, scheduler, state: dict, keep: int) -> Path:
    """Adapter + optimizer + RNG + step, written to a temp dir and renamed (atomic)."""
    import torch
    from peft import get_peft_model_state_dict
    from safetensors.torch import save_file

    final = work / "checkpoints" / f"step-{state['step']:08d}"
    with atomic_folder(final) as tmp:
        weights = {k: v.detach().cpu().contiguous() for k, v in get_peft_model_state_dict(peft_model).items()}
        save_file(weights, tmp / "adapter_model.safetensors")
        torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                    "rng_cpu": torch.get_rng_state(),
                    "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}, tmp / "optimizer.pt")
        (tmp / "trainer_state.json").write_text(json.dumps(state, ensure_ascii=False, indent=1), encoding="utf-8")
    leftovers = list((work / "checkpoints").glob(".step-*.tmp-*"))  # from a run that crashed mid-save
    for old in checkpoints(work)[:-keep] + leftovers:
        shutil.rmtree(old, ignore_errors=True)
    return final


def restore_checkpoint(ckpt: Path, peft_model, optimizer, scheduler, config) -> dict:
    import torch
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    state = json.loads((ckpt / "trainer_state.json").read_text(encoding="utf-8"))
    saved = state.get("config", {})
    changed = [k for k in _RESUME_KEYS if saved.get(k) != dataclasses.asdict(config).get(k)]
    if changed:
        raise ConfigError(f"이어서 학습하려는 설정이 체크포인트와 달라요: {changed}", "같은 설정으로 --resume 하거나, --resume 없이 새로 시작하세요.")
    set_peft_model_state_dict(peft_model, load_file(ckpt / "adapter_model.safetensors"))
    blob = torch.load(ckpt / "optimizer.pt", weights_only=False)
    optimizer.load_state_dict(blob["optimizer"])
    scheduler.load_state_dict(blob["scheduler"])
    torch.set_rng_state(blob["rng_cpu"])
    if blob.get("rng_cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(blob["rng_cuda"])
    return state


def latest_checkpoint(work: Path) -> Path | None:
    found = checkpoints(work)
    return found[-1] if found else None

