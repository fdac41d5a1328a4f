"""Compression recipes: typed stages read from ``configs/compress/*.yaml``.

    kmed compress --base models/kb-teacher --out models/kb-small --recipe configs/compress/default.yaml

A recipe is a list of stages run in order (``vocab``, ``distill``, ``prune``, ``unstructured``, ``quantize``),
each with a ``gate``: how much worse than the previous stage it may score before the pipeline stops.
Every key is a dataclass field; an unknown key is an error naming the key and the keys allowed,
so a typo never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path

from kmed.artifacts import read_yaml_config
from kmed.errors import ConfigError

KD_LOSSES = ("forward_kl", "reverse_kl", "skew_forward_kl", "skew_reverse_kl", "ce")
QUANT_SCHEMES = ("int8", "int8_wo", "int4", "bnb_int8", "bnb_nf4")
IMPORTANCE = ("activation", "magnitude")
VOCAB_CORPORA = ("kb", "triage")  # KB sentences outside the held-out split; data/triage utterances


@dataclass
class Gate:
    """How much a stage may regress against the stage before it (``None``: not checked)."""

    max_ppl_ratio: float | None = 1.25  # held-out perplexity may grow by at most this factor
    max_qa_drop: float | None = 0.05  # grounded-QA score may fall by at most this much (absolute)
    min_size_ratio_saving: float | None = None  # e.g. 0.2: the stage must shrink the model by ≥ 20 %
    # Against the unmodified base model rather than the stage before (None: not checked):
    max_ppl_ratio_vs_base: float | None = None  # e.g. 1.05: at most +5 % perplexity in all
    min_top1_agreement: float | None = None  # e.g. 0.9: the next-token argmax equals the base's ≥ 90 %
    max_kl: float | None = None  # mean KL(base ‖ stage) in nats per token

    def __post_init__(self) -> None:
        if self.max_ppl_ratio is not None and self.max_ppl_ratio < 1.0:
            raise ConfigError(f"gate.max_ppl_ratio={self.max_ppl_ratio}는 1.0 이상이어야 해요.")


@dataclass
class LoraRecovery:
    """A short LoRA fine-tune after pruning, merged back into the weights."""

    steps: int = 40
    rank: int = 8
    lr: float = 2e-3
    kd_from_unpruned: bool = True  # learn the unpruned model's logits rather than only the text


@dataclass
class DistillStage:
    """Train a smaller student on the teacher's logits (the current model is the teacher)."""

    kind: str = "distill"
    keep_layers: list[int] | None = None  # init the student from these teacher layers
    num_layers: int | None = None  # or: keep this many evenly spaced teacher layers
    student_config: dict | None = None  # or: a fresh student, the teacher's config with these overrides
    loss: str = "forward_kl"
    kd_weight: float = 0.9  # share of the KD term; the rest is cross-entropy on the text
    temperature: float = 2.0
    skew_alpha: float = 0.1  # skew KL mixes this much of the student into the target distribution
    steps: int = 200
    batch_size: int = 8
    seq_len: int = 128
    lr: float = 1e-3
    seed: int = 0
    gate: Gate = field(default_factory=Gate)

    def __post_init__(self) -> None:
        if self.loss not in KD_LOSSES:
            raise ConfigError(f"distill.loss '{self.loss}'는 지원하지 않아요.", f"{list(KD_LOSSES)} 중 하나를 쓰세요.")
        chosen = [k for k in ("keep_layers", "num_layers", "student_config") if getattr(self, k) is not None]
        if len(chosen) != 1:
            raise ConfigError(
                "distill 단계에는 학생 모델을 만드는 방법이 정확히 하나 있어야 해요.",
                "keep_layers, num_layers, student_config 중 하나만 쓰세요.",
            )
        if not 0.0 <= self.kd_weight <= 1.0 or not 0.0 <= self.skew_alpha < 1.0:
            raise ConfigError("distill.kd_weight는 0~1, skew_alpha는 0~1 미만이어야 해요.")


@dataclass
class PruneStage:
    """Structured pruning: whole heads, MLP channels and layers, so the model really shrinks."""

    kind: str = "prune"
    heads: float = 0.0  # share of attention heads (LLaMA: KV groups) removed in every layer
    mlp: float = 0.0  # share of MLP channels removed in every layer
    layers: int = 0  # number of whole layers removed (least important first)
    importance: str = "activation"
    calibration_samples: int = 32
    seq_len: int = 128
    lora: LoraRecovery | None = None
    gate: Gate = field(default_factory=Gate)

    def __post_init__(self) -> None:
        if self.importance not in IMPORTANCE:
            raise ConfigError(f"prune.importance '{self.importance}'는 지원하지 않아요.", f"{list(IMPORTANCE)} 중 하나를 쓰세요.")
        if not (0.0 <= self.heads < 1.0 and 0.0 <= self.mlp < 1.0 and self.layers >= 0):
            raise ConfigError("prune.heads와 prune.mlp는 0 이상 1 미만, prune.layers는 0 이상이어야 해요.")


@dataclass
class UnstructuredStage:
    """Zero the smallest weights. For comparison only: dense kernels save neither bytes nor time."""

    kind: str = "unstructured"
    sparsity: float = 0.5  # share of weights zeroed in every linear layer of the decoder
    importance: str = "activation"  # activation: |W|·‖x‖ (Wanda); magnitude: |W|
    calibration_samples: int = 32
    seq_len: int = 128
    gate: Gate = field(default_factory=Gate)

    def __post_init__(self) -> None:
        if not 0.0 <= self.sparsity < 1.0:
            raise ConfigError("unstructured.sparsity는 0 이상 1 미만이어야 해요.")
        if self.importance not in IMPORTANCE:
            raise ConfigError(f"unstructured.importance '{self.importance}'는 지원하지 않아요.", f"{list(IMPORTANCE)} 중 하나를 쓰세요.")


@dataclass
class QuantizeStage:
    """Quantize the decoder's linear layers; saved and reloaded in quantized form."""

    kind: str = "quantize"
    scheme: str = "int4"
    group_size: int = 64  # int4: weights sharing one scale and zero; smaller is more accurate and larger
    quantize_embeddings: bool = True  # int8 rows for the input embedding (a lookup: speed unchanged)
    gate: Gate = field(default_factory=Gate)

    def __post_init__(self) -> None:
        if self.scheme not in QUANT_SCHEMES:
            raise ConfigError(f"quantize.scheme '{self.scheme}'는 지원하지 않아요.", f"{list(QUANT_SCHEMES)} 중 하나를 쓰세요.")
        if self.group_size not in (32, 64, 128, 256):
            raise ConfigError("quantize.group_size는 32, 64, 128, 256 중 하나여야 해요.")


@dataclass
class VocabStage:
    """Keep only the tokens Korean medical text needs (kmed/llm/compression/vocab.py)."""

    kind: str = "vocab"
    keep_first: int = 5000  # also keep the lowest ids made of ASCII only: common English, numbers, code
    corpus: list[str] = field(default_factory=lambda: ["kb", "triage"])  # training text whose tokens stay
    gate: Gate = field(default_factory=Gate)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.corpus) - set(VOCAB_CORPORA))
        if unknown:
            raise ConfigError(f"vocab.corpus 에 알 수 없는 이름 {unknown}이 있어요.", f"{list(VOCAB_CORPORA)} 중에서 고르세요.")
        if self.keep_first < 0:
            raise ConfigError("vocab.keep_first는 0 이상이어야 해요.")


@dataclass
class EvalSettings:
    """How every stage is re-scored."""

    heldout_every: int = 10  # every n-th KB sentence (by hash) is held out for perplexity
    ppl_seq_len: int = 128
    max_eval_blocks: int | None = None  # cap the held-out blocks scored (None: all of them)
    qa: bool = True  # grounded QA on the dev set when the model has a chat template (else skipped)
    qa_max_items: int = 20
    speed_prompt_tokens: int = 64
    speed_new_tokens: int = 16
    memory_subprocess: bool = True  # peak RSS of reloading the stage in a fresh process
    agreement_blocks: int = 16  # held-out blocks on which KL and top-1 agreement with the base are scored
    agreement_seq_len: int = 64


@dataclass
class Recipe:
    stages: list = field(default_factory=list)
    eval: EvalSettings = field(default_factory=EvalSettings)
    seed: int = 0
    keep_stage_checkpoints: bool = True  # also keep every stage's model under stages/
    name: str = ""

    def __post_init__(self) -> None:
        if not self.stages:
            raise ConfigError("레시피에 stages가 비어 있어요.", "distill, prune, unstructured, quantize 중 하나 이상을 적어 주세요.")
        for i, stage in enumerate(self.stages):
            if isinstance(stage, QuantizeStage) and i != len(self.stages) - 1:
                raise ConfigError("quantize 단계는 마지막이어야 해요.", "양자화한 모델은 다시 학습하거나 가지치기할 수 없어요: quantize를 맨 끝으로 옮기세요.")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


STAGE_TYPES = {"vocab": VocabStage, "distill": DistillStage, "prune": PruneStage, "unstructured": UnstructuredStage, "quantize": QuantizeStage}


def _build(cls, raw, where: str):
    """Instantiate dataclass ``cls`` from ``raw``, recursing into dataclass-typed fields."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: 키-값 목록이어야 해요 (받은 값: {raw!r}).")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(
            f"{where}: 알 수 없는 키 {', '.join(repr(k) for k in unknown)}가 있어요.",
            f"쓸 수 있는 키: {', '.join(sorted(known))}",
        )
    kwargs = {}
    for name, value in raw.items():
        hint = hints[name]
        inner = [a for a in typing.get_args(hint) if dataclasses.is_dataclass(a)]
        target = hint if dataclasses.is_dataclass(hint) else (inner[0] if inner else None)
        if target is not None and value is not None:
            value = _build(target, value, f"{where}.{name}")
        kwargs[name] = value
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def recipe_from_dict(raw: dict, where: str = "recipe") -> Recipe:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: 레시피는 YAML 매핑이어야 해요.")
    raw = dict(raw)
    stages = []
    for i, stage in enumerate(raw.pop("stages", None) or []):
        kind = stage.get("kind") if isinstance(stage, dict) else None
        if kind not in STAGE_TYPES:
            raise ConfigError(
                f"{where}.stages[{i}]: kind {kind!r}는 알 수 없는 단계예요.", f"kind는 {list(STAGE_TYPES)} 중 하나예요."
            )
        stages.append(_build(STAGE_TYPES[kind], stage, f"{where}.stages[{i}]({kind})"))
    evals = _build(EvalSettings, raw.pop("eval", None), f"{where}.eval")
    unknown = sorted(set(raw) - {"seed", "keep_stage_checkpoints", "name"})
    if unknown:
        raise ConfigError(
            f"{where}: 알 수 없는 키 {', '.join(repr(k) for k in unknown)}가 있어요.",
            "쓸 수 있는 키: eval, keep_stage_checkpoints, name, seed, stages",
        )
    return Recipe(stages=stages, eval=evals, **raw)


def load_recipe(path: str | Path) -> Recipe:
    path = Path(path)
    if not path.is_file():
        shipped = sorted(p.name for p in (Path(__file__).resolve().parents[3] / "configs" / "compress").glob("*.yaml"))
        raise ConfigError(f"레시피 파일이 없어요: {path}", f"configs/compress/ 의 레시피를 쓰세요: {', '.join(shipped)}")
    raw = read_yaml_config(path, default=path)  # bad YAML or a top level that is not a mapping: ConfigError
    recipe = recipe_from_dict(raw, where=path.name)
    recipe.name = recipe.name or path.stem
    return recipe


def default_recipe() -> Recipe:
    """Quantize only (int4), for ``kmed compress`` without ``--recipe``."""
    return Recipe(stages=[QuantizeStage()], name="int4-only")
