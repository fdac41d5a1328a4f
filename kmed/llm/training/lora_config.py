"""The LoRA recipe's settings: ``configs/train_lora.yaml``, then the CLI flags, checked up front.

    config = load_train_config(None, base="models/polyglot-ko-1.3b", out="models/kmed-lora", max_steps=50)

``kmed.llm.training.lora`` re-exports all three names.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from kmed.artifacts import read_yaml_config
from kmed.errors import ConfigError

DEFAULT_CONFIG = Path(__file__).resolve().parents[3] / "configs" / "train_lora.yaml"


@dataclass
class TrainLoraConfig:
    base: str = ""  # base model folder or hub id
    out: str = ""  # adapter folder to create
    data: str | None = None  # grounded-QA JSONL; None: generated from the KB
    max_steps: int = 200
    batch_size: int = 4
    grad_accum: int = 4
    lr: float = 2e-4
    warmup_steps: int = 10
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    target_modules: list[str] | None = None  # None: TARGET_MODULES for the base's architecture
    max_seq_len: int = 1024
    distractors: int = 3
    unanswerable_every: int = 10
    eval_fraction: float = 0.05
    eval_batches: int = 20
    dtype: str = "auto"  # auto: bfloat16 on a GPU that has it, else float32
    quantize: str | None = None  # "nf4": QLoRA, base weights in 4 bits
    gradient_checkpointing: bool = False
    seed: int = 42
    save_every: int = 50
    keep_checkpoints: int = 2
    log_every: int = 10
    resume: bool = False
    overwrite: bool = False
    progress: bool = True
    extra: dict = field(default_factory=dict)  # free-form notes copied into the manifest

    def __post_init__(self) -> None:
        positive = ("max_steps", "batch_size", "grad_accum", "lora_r", "lora_alpha", "max_seq_len", "save_every",
                    "log_every")
        bad = [k for k in positive if getattr(self, k) <= 0]
        if bad:
            raise ConfigError(f"학습 설정 {bad} 값은 0보다 커야 해요.")
        if not 0 <= self.lora_dropout < 1 or not 0 <= self.eval_fraction < 1:
            raise ConfigError("lora_dropout과 eval_fraction은 0 이상 1 미만이어야 해요.")
        if self.quantize not in (None, "nf4"):
            raise ConfigError(f"quantize '{self.quantize}'은(는) 학습에 쓸 수 없어요.", "quantize: nf4 (QLoRA) 또는 null")
        if self.dtype not in ("auto", "float32", "bfloat16", "float16"):
            raise ConfigError(f"dtype '{self.dtype}'을(를) 모르겠어요.",
                              "auto, float32, bfloat16, float16 중 하나로 써 주세요.")


def load_train_config(path: str | Path | None = None, **overrides) -> TrainLoraConfig:
    """YAML values, then non-None ``overrides`` (the CLI flags). Unknown keys are errors."""
    path = Path(path) if path else DEFAULT_CONFIG
    if not path.is_file():
        raise ConfigError(f"학습 설정 파일 '{path}'이(가) 없어요.", f"--config를 빼면 {DEFAULT_CONFIG.name}을(를) 써요.")
    raw = read_yaml_config(path, DEFAULT_CONFIG)  # bad YAML or a non-mapping is a ConfigError naming the fix
    known = {f.name for f in dataclasses.fields(TrainLoraConfig)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"{path}: 알 수 없는 설정 {unknown}", f"쓸 수 있는 설정: {sorted(known)}")
    raw.update({k: v for k, v in overrides.items() if v is not None})
    config = TrainLoraConfig(**raw)
    if not config.base or not config.out:
        raise ConfigError("--base(기본 모델)와 --out(어댑터 폴더)이 필요해요.",
                          "예: kmed train lora --base models/polyglot-ko-1.3b --out models/kmed-lora")
    return config
