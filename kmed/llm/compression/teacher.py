"""Train a small GPT-NeoX (or LLaMA) on the KB's own text: a real, trained teacher for the gates.

    python -m kmed.llm.compression.teacher --out models/kb-teacher --minutes 3
    kmed compress --base models/kb-teacher --out models/kb-small --recipe configs/compress/default.yaml

Compression gates mean nothing on random weights (every variant is equally bad), so the gates are
measured on this: a tokenizer and a model trained from scratch on KB sentences, with the same
held-out split every stage is scored on kept out of training, and a second small split used to
keep the best checkpoint. Minutes on 2 CPU cores; no download.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import time
from pathlib import Path

import torch

from kmed.llm.compression.evaluate import medical_corpus, perplexity, split_heldout, text_nll, token_blocks
from kmed.llm.models import ModelShape

TEACHER_SHAPES = {
    # ~1 M parameters: a few hundred steps a minute on 2 cores, four layers so a 2-layer student is a real cut.
    "gpt_neox": dict(hidden_size=128, num_layers=4, num_heads=4, num_kv_heads=4, intermediate_size=512, rotary_pct=0.5),
    "llama": dict(hidden_size=128, num_layers=4, num_heads=4, num_kv_heads=2, intermediate_size=384, rotary_pct=1.0),
}


def _text_ppl(model, tokenizer, sentences: list[str], seq_len: int) -> float:
    """Held-out perplexity exactly as ``kmed compress`` scores its base: padding never counted."""
    nll, count = text_nll(model, tokenizer, sentences, seq_len)
    return math.exp(nll / max(count, 1))


def _split_validation(train: list[str]) -> tuple[list[str], list[str]]:
    """A validation split for early stopping, disjoint from the gates' held-out sentences."""
    fit, val = [], []
    for s in train:
        (val if int(hashlib.md5(s.encode()).hexdigest()[:8], 16) % 20 == 0 else fit).append(s)
    return fit, val or fit[-1:]


def train_teacher(out: str | Path, minutes: float = 3.0, arch: str = "gpt_neox", vocab_size: int = 1024,
                  seq_len: int = 128, batch_size: int = 8, lr: float = 3e-3, seed: int = 0, max_steps: int | None = None,
                  log=print, **shape_overrides) -> dict:
    """Train for ``minutes`` (or ``max_steps``), keep the best validation checkpoint, save an HF folder."""
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    from kmed.llm.tiny import train_tokenizer

    hf_logging.disable_progress_bar()
    torch.manual_seed(seed)
    train_text, heldout_text = split_heldout(medical_corpus())
    fit_text, val_text = _split_validation(train_text)
    tokenizer = train_tokenizer(fit_text, vocab_size=vocab_size)
    shape = ModelShape(name=f"kb-teacher-{arch}", arch=arch, vocab_size=len(tokenizer), max_position=max(512, seq_len),
                       **{**TEACHER_SHAPES[arch], **shape_overrides})
    config = shape.to_hf_config(pad_token_id=0, bos_token_id=1, eos_token_id=2)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    fit = token_blocks(tokenizer, fit_text, seq_len)
    val = token_blocks(tokenizer, val_text, seq_len)
    held = token_blocks(tokenizer, heldout_text, seq_len)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.1, betas=(0.9, 0.95))
    budget = minutes * 60
    gen = torch.Generator().manual_seed(seed)
    best, best_state, step, losses = math.inf, None, 0, []
    start = time.time()
    est_steps = max_steps or 10_000
    while True:
        elapsed = time.time() - start
        if (max_steps is not None and step >= max_steps) or (max_steps is None and elapsed > budget):
            break
        frac = step / est_steps if max_steps else elapsed / budget
        for group in opt.param_groups:  # warm-up, then cosine to 10 %
            group["lr"] = lr * min(1.0, (step + 1) / 50) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0))))
        model.train()
        batch = fit[torch.randint(0, len(fit), (batch_size,), generator=gen)]
        loss = model(input_ids=batch, labels=batch).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.detach().item())
        step += 1
        if step % 50 == 0:
            val_ppl = perplexity(model, val)
            if val_ppl < best:
                best, best_state = val_ppl, {k: v.detach().clone() for k, v in model.state_dict().items()}
            log(f"step {step}: train loss {sum(losses[-50:]) / 50:.3f}, val ppl {val_ppl:.2f} ({time.time() - start:.0f}s)")
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.generation_config.pad_token_id, model.generation_config.eos_token_id = 0, 2
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    info = {
        "arch": arch, "params": sum(p.numel() for p in model.parameters()), "steps": step,
        "seconds": round(time.time() - start, 1), "best_val_ppl": best, "heldout_ppl": _text_ppl(model, tokenizer, heldout_text, seq_len),
        "train_tokens": int(fit.numel()), "heldout_tokens": int(held.numel()), "vocab_size": len(tokenizer),
        "shape": {**TEACHER_SHAPES[arch], **shape_overrides},
    }
    (out / "kmed_teacher.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
    log(f"saved {out}: {info['params']:,} params, held-out ppl {info['heldout_ppl']:.2f} after {step} steps")
    return info


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Train a small teacher LM on KB text (CPU, minutes).")
    parser.add_argument("--out", required=True)
    parser.add_argument("--minutes", type=float, default=3.0, help="wall-clock training budget")
    parser.add_argument("--arch", default="gpt_neox", choices=sorted(TEACHER_SHAPES))
    parser.add_argument("--max-steps", type=int, default=None, help="stop after this many steps instead")
    parser.add_argument("--vocab-size", type=int, default=1024)
    args = parser.parse_args(argv)
    train_teacher(args.out, args.minutes, args.arch, args.vocab_size, max_steps=args.max_steps)


if __name__ == "__main__":
    main()
