"""LoRA SFT recipe: teach a causal LM to answer from numbered context and cite it. Read top to bottom.

    kmed train lora --base models/polyglot-ko-1.3b --out models/kmed-lora [--data qa.jsonl] [--max-steps 200]
    torchrun --nproc_per_node 2 -m kmed.cli.main train lora --base … --out …     # same code, DDP

Steps: processes → data (KB-generated grounded QA, or ``--data`` JSONL) → base model + peft LoRA
→ optimizer and schedule → resume → loop (loss on answer tokens only) → adapter + manifest. The
settings (``TrainLoraConfig``, ``load_train_config``) are in ``kmed.llm.training.lora_config``.

Nothing half-written ever looks finished: checkpoints and the final adapter are written into
``<out>.partial/`` and renamed into place; ``<out>`` appears only when the run completed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import shutil
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from kmed.artifacts import swap_in
from kmed.errors import ConfigError, require_extra
from kmed.llm.training import data as D
from kmed.llm.training.checkpoint import latest_checkpoint, restore_checkpoint, save_checkpoint
from kmed.llm.training.lora_config import DEFAULT_CONFIG, TrainLoraConfig, load_train_config

# The settings live in lora_config; they stay importable from here.
__all__ = ["DEFAULT_CONFIG", "MANIFEST", "TARGET_MODULES", "Dist", "TrainLoraConfig", "add_lora", "eval_loss",
           "load_base_model", "load_records", "load_train_config", "lr_at", "setup_processes", "train_lora"]

MANIFEST = "kmed_adapter.json"
TARGET_MODULES = {
    "gpt_neox": ["query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"],
    "llama": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "gemma3_text": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
}


# ---- 1. processes ------------------------------------------------------------------------------


@dataclass
class Dist:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    device: str = "cpu"

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_processes() -> Dist:
    """One process, or one of WORLD_SIZE under torchrun / accelerate launch (DDP)."""
    import torch

    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available()
    device = f"cuda:{local_rank}" if cuda else "cpu"
    if cuda:
        torch.cuda.set_device(local_rank)
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend="nccl" if cuda else "gloo")
    rank = torch.distributed.get_rank() if world > 1 else 0
    return Dist(rank=rank, local_rank=local_rank, world_size=world, device=device)


# ---- 2. data -----------------------------------------------------------------------------------


def load_records(config: TrainLoraConfig) -> tuple[list[dict], dict]:
    if config.data:
        path = Path(config.data)
        records = D.read_records(path)
        return records, {"source": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    from kmed.data.kb import load_kb

    kb, errors = load_kb()
    records = D.kb_records(kb, config.distractors, config.unanswerable_every, config.seed)
    if not records:
        raise ConfigError("KB에서 학습 데이터를 만들지 못했어요.", "kmed kb validate 로 KB를 확인하거나 --data를 주세요.")
    return records, {"source": "kb", "kb_hash": kb.content_hash(), "kb_errors": len(errors)}


# ---- 3. model ----------------------------------------------------------------------------------


def load_base_model(config: TrainLoraConfig, device: str):
    import torch
    from transformers import AutoModelForCausalLM

    from kmed.llm.hf import check_model_source

    source = check_model_source(config.base)
    if config.dtype == "auto":
        dtype = torch.bfloat16 if device.startswith("cuda") and torch.cuda.is_bf16_supported() else torch.float32
    else:
        dtype = getattr(torch, config.dtype)
    kwargs: dict = {"dtype": dtype}
    if config.quantize == "nf4":
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=dtype, bnb_4bit_use_double_quant=True
        )
        kwargs["device_map"] = {"": device}
    model = AutoModelForCausalLM.from_pretrained(str(source), **kwargs)
    if config.quantize == "nf4":
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=config.gradient_checkpointing)
    else:
        model.to(device)
    if config.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()  # LoRA inputs need grads to flow through checkpoints
    return model


def add_lora(model, config: TrainLoraConfig):
    from peft import LoraConfig, get_peft_model

    arch = model.config.model_type
    targets = config.target_modules or TARGET_MODULES.get(arch)
    if not targets:
        raise ConfigError(
            f"'{arch}' 구조에 LoRA를 붙일 모듈을 몰라요.",
            f"설정에 target_modules를 적어 주세요 (GPT-NeoX 예: {TARGET_MODULES['gpt_neox']}).",
        )
    lora = LoraConfig(task_type="CAUSAL_LM", r=config.lora_r, lora_alpha=config.lora_alpha,
                      lora_dropout=config.lora_dropout, target_modules=list(targets))
    return get_peft_model(model, lora), list(targets)


def lr_at(step: int, config: TrainLoraConfig) -> float:
    """Linear warm-up, then cosine decay to 10% of the peak."""
    if step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.max_steps - config.warmup_steps)
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


# ---- 5. evaluation -----------------------------------------------------------------------------


def eval_loss(model, examples: list[D.Example], config: TrainLoraConfig, pad_id: int, device: str) -> float | None:
    """Mean loss per answer token over the held-out examples."""
    import torch

    if not examples:
        return None
    model.eval()
    total, tokens = 0.0, 0
    with torch.no_grad():
        for start in range(0, min(len(examples), config.eval_batches * config.batch_size), config.batch_size):
            batch = {k: v.to(device) for k, v in D.collate(examples[start : start + config.batch_size], pad_id).items()}
            n = int((batch["labels"][:, 1:] != D.IGNORE_INDEX).sum())
            total += float(model(**batch).loss) * n
            tokens += n
    model.train()
    return total / max(1, tokens)


# ---- the recipe --------------------------------------------------------------------------------


def train_lora(config: TrainLoraConfig, tracker=None) -> dict:
    """``tracker``: optional ``kmed.eval.tracking.Tracker``; the main process reports each logged step to it."""
    import torch
    from tqdm.auto import tqdm

    started = time.time()
    out = Path(config.out)
    work = Path(f"{out}.partial")
    if out.exists() and not config.overwrite:
        raise ConfigError(f"'{out}'이(가) 이미 있어요.", "다른 --out을 주거나, 덮어쓰려면 --overwrite를 붙이세요.")
    # Optional extras, checked before minutes of loading: peft (kmed[lora]); bitsandbytes for nf4 (kmed[quant]).
    require_extra("peft", "lora", "LoRA 학습")
    if config.quantize == "nf4":
        require_extra("bitsandbytes", "quant", "--quantize nf4 학습")

    # 1. processes and seeds
    dist = setup_processes()
    torch.manual_seed(config.seed)

    # 2. data: records → prompt+answer token ids, labels only on the answer
    from kmed.llm.hf import check_model_source, load_tokenizer

    tokenizer = load_tokenizer(check_model_source(config.base))
    records, data_info = load_records(config)
    train_records, eval_records = D.split_records(records, config.eval_fraction, config.seed)
    train_examples, skipped = D.tokenize_records(train_records, tokenizer, config.max_seq_len)
    eval_examples, _ = D.tokenize_records(eval_records, tokenizer, config.max_seq_len)
    if not train_examples:
        raise ConfigError(f"max_seq_len {config.max_seq_len} 안에 들어가는 학습 예제가 없어요.", "max_seq_len을 늘리세요.")

    # 3. base model + LoRA; only the adapter's weights train
    model = load_base_model(config, dist.device)
    model, targets = add_lora(model, config)
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]

    # 4. optimizer and schedule
    optimizer = torch.optim.AdamW(trainable, lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_at(s, config))

    # 5. resume: the adapter, optimizer, RNG and step of the newest complete checkpoint
    state = {"step": 0, "tokens": 0, "losses": [], "config": dataclasses.asdict(config)}
    latest = latest_checkpoint(work)
    resumed_from = None
    if config.resume and latest is not None:
        state = restore_checkpoint(latest, model, optimizer, scheduler, config)
        state["config"] = dataclasses.asdict(config)
        resumed_from = latest.name
    elif dist.main and work.exists():
        shutil.rmtree(work)  # a fresh start must not pick up another run's checkpoints
    eval_before = eval_loss(model, eval_examples, config, tokenizer.pad_token_id, dist.device) if state["step"] == 0 else state.get("eval_before")
    state["eval_before"] = eval_before

    # 6. processes share gradients (DDP) only when there is more than one
    runner = model
    if dist.world_size > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        runner = DDP(model, device_ids=[dist.local_rank] if dist.device.startswith("cuda") else None)

    # 7. the loop: grad_accum micro-batches per optimizer step, loss on answer tokens only
    batches = D.batch_order(len(train_examples), config.batch_size, config.seed, dist.rank, dist.world_size)
    for _ in range(state["step"] * config.grad_accum):  # skip what the resumed run already saw
        next(batches)
    bar = tqdm(total=config.max_steps, initial=state["step"], disable=not (dist.main and config.progress), desc="LoRA")
    tick, tokens_at_tick = time.time(), state["tokens"]  # speed counts this process's tokens only (resume)
    while state["step"] < config.max_steps:
        optimizer.zero_grad(set_to_none=True)
        step_loss = 0.0
        for micro in range(config.grad_accum):
            batch = {k: v.to(dist.device) for k, v in D.collate([train_examples[i] for i in next(batches)], tokenizer.pad_token_id).items()}
            last = micro == config.grad_accum - 1
            sync = runner.no_sync() if (dist.world_size > 1 and not last) else contextlib.nullcontext()
            with sync:
                loss = runner(**batch).loss / config.grad_accum
                loss.backward()
            step_loss += float(loss.detach())
            state["tokens"] += int(batch["attention_mask"].sum())
        torch.nn.utils.clip_grad_norm_(trainable, config.max_grad_norm)
        optimizer.step()
        scheduler.step()
        _release_freed_memory(dist.device)
        state["step"] += 1
        state["losses"].append(round(step_loss, 6))
        bar.update(1)
        bar.set_postfix(loss=f"{step_loss:.3f}", lr=f"{scheduler.get_last_lr()[0]:.2e}")
        if dist.main and (state["step"] % config.log_every == 0 or state["step"] == config.max_steps):
            entry = {"step": state["step"], "loss": step_loss, "lr": scheduler.get_last_lr()[0],
                     "tokens_per_s": (state["tokens"] - tokens_at_tick) / max(1e-9, time.time() - tick)}
            _log(work, entry)
            if tracker is not None:
                tracker.log_metrics({"train/loss": step_loss, "train/lr": entry["lr"],
                                     "train/tokens_per_s": entry["tokens_per_s"],
                                     "train/peak_memory_mb": _peak_memory_mb(dist.device)}, step=state["step"])
        if dist.main and (state["step"] % config.save_every == 0 or state["step"] == config.max_steps):
            save_checkpoint(work, model, optimizer, scheduler, state, config.keep_checkpoints)
        _barrier(dist)
    bar.close()

    # 8. the adapter, its tokenizer and a manifest of how it was made; renamed into place at once
    eval_after = eval_loss(model, eval_examples, config, tokenizer.pad_token_id, dist.device)
    if tracker is not None and dist.main:
        tracker.log_metrics({"eval/loss_before": eval_before, "eval/loss_after": eval_after}, step=state["step"])
    manifest = {
        "kind": "kmed_lora_adapter",
        "format_version": 1,
        "base_model": config.base,
        "base_config_sha256": _sha256(Path(config.base) / "config.json"),
        "base_shape": _shape(model),
        "data": {**data_info, "records": len(records), "train_examples": len(train_examples),
                 "eval_examples": len(eval_examples), "skipped_too_long": len(skipped)},
        "lora": {"r": config.lora_r, "alpha": config.lora_alpha, "dropout": config.lora_dropout, "target_modules": targets},
        "training": {"steps": state["step"], "tokens": state["tokens"], "world_size": dist.world_size,
                     "first_loss": state["losses"][0] if state["losses"] else None,
                     "last_loss": state["losses"][-1] if state["losses"] else None,
                     "eval_loss_before": eval_before, "eval_loss_after": eval_after,
                     "seconds": round(time.time() - started, 2), "device": dist.device,
                     "resumed_from": resumed_from},
        "config": dataclasses.asdict(config),
        "versions": _versions(),
        "command": " ".join(["kmed", *sys.argv[1:]]) if sys.argv and "kmed" in sys.argv[0] else None,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    if dist.main:
        staged = work / "final"
        shutil.rmtree(staged, ignore_errors=True)
        model.save_pretrained(staged)
        tokenizer.save_pretrained(staged)
        if (work / "train_log.jsonl").is_file():
            shutil.copy(work / "train_log.jsonl", staged / "train_log.jsonl")
        (staged / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
        swap_in(staged, out)
        shutil.rmtree(work, ignore_errors=True)
    _barrier(dist)
    if dist.world_size > 1:
        torch.distributed.destroy_process_group()
    return manifest


# ---- small helpers -----------------------------------------------------------------------------


def _barrier(dist: Dist) -> None:
    if dist.world_size > 1:
        import torch

        torch.distributed.barrier()


def _release_freed_memory(device: str) -> None:
    """Give freed heap pages back to the OS after each CPU step. Batches of different lengths leave
    glibc's heap fragmented: a Gemma 3 270M run here (batch 4, ~1,000 tokens) only grew, from 6 to
    24 GiB over 47 steps, and was killed for memory. With this call its resident size went up and
    back down between 11 and 16 GiB over 20 steps. A no-op on GPUs and outside glibc."""
    if device != "cpu" or not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _log(work: Path, entry: dict) -> None:
    work.mkdir(parents=True, exist_ok=True)
    with open(work / "train_log.jsonl", "a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry) + "\n")


def _peak_memory_mb(device: str) -> float:
    """Peak GPU memory allocated by torch on a GPU; else the process's peak resident memory."""
    import torch

    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated(device) / 2**20
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _sha256(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def _shape(model) -> dict | None:
    from kmed.llm.models import ModelShape

    try:
        return ModelShape.from_hf_config(model.get_base_model().config).to_dict()
    except ConfigError:
        return None


def _versions() -> dict:
    import peft
    import torch
    import transformers

    import kmed

    return {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__,
            "kmed": getattr(kmed, "__version__", None)}
