"""Knowledge distillation: a student learns the teacher's next-token distributions on KB text.

    student = init_student(teacher, num_layers=2)            # or keep_layers=[0, 3], or student_config={...}
    losses = train(student, teacher, train_blocks, steps=200, loss="forward_kl", kd_weight=0.9)

Losses (p: teacher, q: student, both softened by ``temperature``):
- ``forward_kl``  KL(p‖q): mass-covering, the classic Hinton loss;
- ``reverse_kl``  KL(q‖p): mode-seeking, better when the student is much smaller (MiniLLM);
- ``skew_forward_kl`` KL(p‖αp+(1−α)q) and ``skew_reverse_kl`` KL(q‖αq+(1−α)p): bounded gradients
  when q puts ~0 mass where p does not (DistiLLM);
- ``ce``: cross-entropy on the text only (the no-teacher baseline).
The KD term is mixed with cross-entropy: ``kd_weight·T²·KD + (1−kd_weight)·CE``.

``lora_recover`` reuses the same loop with a LoRA adapter on a pruned model, then merges it.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from kmed.llm.compression.arch import family_of
from kmed.llm.compression.prune import drop_layers


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, kind: str, temperature: float = 1.0,
            skew_alpha: float = 0.1) -> torch.Tensor:
    """Mean per-token divergence between softened distributions; logits are [..., vocab]."""
    s = F.log_softmax(student_logits.float() / temperature, dim=-1).reshape(-1, student_logits.shape[-1])
    t = F.log_softmax(teacher_logits.float() / temperature, dim=-1).reshape(-1, teacher_logits.shape[-1])
    if kind == "forward_kl":
        per_token = (t.exp() * (t - s)).sum(-1)
    elif kind == "reverse_kl":
        per_token = (s.exp() * (s - t)).sum(-1)
    elif kind == "skew_forward_kl":
        mix = torch.logsumexp(torch.stack([t + math.log(skew_alpha), s + math.log(1 - skew_alpha)]), dim=0)
        per_token = (t.exp() * (t - mix)).sum(-1)
    elif kind == "skew_reverse_kl":
        mix = torch.logsumexp(torch.stack([s + math.log(skew_alpha), t + math.log(1 - skew_alpha)]), dim=0)
        per_token = (s.exp() * (s - mix)).sum(-1)
    else:
        raise ValueError(f"unknown KD loss {kind!r}")
    return per_token.mean()


def init_student(teacher: nn.Module, keep_layers: list[int] | None = None, num_layers: int | None = None,
                 student_config: dict | None = None, seed: int = 0) -> tuple[nn.Module, dict]:
    """A student by dropping teacher layers (weights copied) or from a smaller config (random init)."""
    from transformers import AutoModelForCausalLM

    n = teacher.config.num_hidden_layers
    if student_config is not None:
        config = copy.deepcopy(teacher.config)
        for key, value in student_config.items():
            if not hasattr(config, key):
                from kmed.errors import ConfigError

                raise ConfigError(f"distill.student_config 의 {key!r} 는 {config.model_type} 설정에 없어요.")
            setattr(config, key, value)
        torch.manual_seed(seed)
        student = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        return student, {"init": "config", "overrides": student_config}
    if num_layers is not None:
        keep_layers = sorted({round(i * (n - 1) / max(num_layers - 1, 1)) for i in range(num_layers)})
    keep_layers = sorted(set(keep_layers or []))
    if not keep_layers or keep_layers[-1] >= n or keep_layers[0] < 0:
        from kmed.errors import ConfigError

        raise ConfigError(f"distill.keep_layers {keep_layers} 가 교사 모델의 층 범위(0~{n - 1})를 벗어나요.")
    student = copy.deepcopy(teacher)
    drop_layers(student, [i for i in range(n) if i not in keep_layers])
    return student, {"init": "teacher layers", "kept_layers": keep_layers}


def train(student: nn.Module, teacher: nn.Module | None, blocks: torch.Tensor, steps: int, loss: str = "forward_kl",
          kd_weight: float = 0.9, temperature: float = 2.0, skew_alpha: float = 0.1, lr: float = 1e-3,
          batch_size: int = 8, seed: int = 0, params=None) -> list[float]:
    """AdamW with warm-up and cosine decay over random batches of ``blocks``; returns the loss per step."""
    gen = torch.Generator().manual_seed(seed)
    params = [p for p in (params if params is not None else student.parameters()) if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    warmup = max(1, steps // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda i: min(1.0, (i + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(i, steps) / max(steps, 1)))
    )
    use_kd = teacher is not None and loss != "ce" and kd_weight > 0
    if teacher is not None:
        teacher.eval()
    student.train()
    history = []
    for _ in range(steps):
        batch = blocks[torch.randint(0, len(blocks), (min(batch_size, len(blocks)),), generator=gen)]
        logits = student(input_ids=batch).logits
        ce = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]).float(), batch[:, 1:].reshape(-1))
        total = ce
        if use_kd:
            with torch.no_grad():
                t_logits = teacher(input_ids=batch).logits
            kd = kd_loss(logits[:, :-1], t_logits[:, :-1], loss, temperature, skew_alpha)
            total = kd_weight * temperature**2 * kd + (1 - kd_weight) * ce
        opt.zero_grad(set_to_none=True)
        total.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        history.append(total.detach().item())
    student.eval()
    return history


def lora_recover(model: nn.Module, teacher: nn.Module | None, blocks: torch.Tensor, steps: int, rank: int = 8,
                 lr: float = 2e-3, seed: int = 0) -> tuple[nn.Module, list[float]]:
    """Fine-tune LoRA adapters on every decoder projection, then merge them into the weights."""
    from peft import LoraConfig, get_peft_model

    fam = family_of(model)
    targets = sorted({name.rsplit(".", 1)[-1] for name in (*fam.qkv, fam.attn_out, *fam.mlp_in, fam.mlp_out)})
    torch.manual_seed(seed)
    peft_model = get_peft_model(model, LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=targets, lora_dropout=0.0))
    history = train(peft_model, teacher, blocks, steps, loss="forward_kl" if teacher is not None else "ce",
                    kd_weight=0.5 if teacher is not None else 0.0, temperature=1.0, lr=lr, seed=seed)
    return peft_model.merge_and_unload(), history
