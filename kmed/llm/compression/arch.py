"""What compression needs to know about a model family: where its layers and projections live.

Supported: GPT-NeoX (Polyglot-Ko, KoAlpaca, KULLM), LLaMA (Llama-3-Open-Ko, …) and Gemma 3 text
(gemma-3-270m). Anything else fails early with a message naming the families that work.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from torch import nn

from kmed.errors import ConfigError, ModelLoadError

SUPPORTED = ("gpt_neox", "llama", "gemma3_text")


@dataclass(frozen=True)
class Family:
    model_type: str
    backbone: str  # attribute of the CausalLM holding the decoder
    qkv: tuple[str, ...]  # attention input projections, relative to a layer
    attn_out: str
    mlp_in: tuple[str, ...]  # projections producing the MLP channels
    mlp_out: str
    norms: tuple[str, ...]  # per-layer norms over the hidden size
    final_norm: str  # relative to the backbone
    embed: str  # relative to the backbone
    head: str  # relative to the CausalLM


FAMILIES = {
    "gpt_neox": Family(
        "gpt_neox", "gpt_neox", ("attention.query_key_value",), "attention.dense",
        ("mlp.dense_h_to_4h",), "mlp.dense_4h_to_h", ("input_layernorm", "post_attention_layernorm"),
        "final_layer_norm", "embed_in", "lm_head",  # transformers v5 renamed embed_out
    ),
    "llama": Family(
        "llama", "model", ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"), "self_attn.o_proj",
        ("mlp.gate_proj", "mlp.up_proj"), "mlp.down_proj", ("input_layernorm", "post_attention_layernorm"),
        "norm", "embed_tokens", "lm_head",
    ),
    # LLaMA's layout plus RMSNorms before and after each block (and per-head q/k norms, which
    # pruning never touches: they act on one head's width). The head is tied to the embedding.
    "gemma3_text": Family(
        "gemma3_text", "model", ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"), "self_attn.o_proj",
        ("mlp.gate_proj", "mlp.up_proj"), "mlp.down_proj",
        ("input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm", "post_feedforward_layernorm"),
        "norm", "embed_tokens", "lm_head",
    ),
}


def family_of(model_or_config) -> Family:
    config = getattr(model_or_config, "config", model_or_config)
    model_type = getattr(config, "model_type", None)
    if model_type not in FAMILIES:
        raise ConfigError(
            f"지원하지 않는 모델 구조예요: {model_type!r}.",
            f"압축은 {', '.join(SUPPORTED)} 계열만 지원해요 (예: EleutherAI/polyglot-ko-1.3b).",
        )
    return FAMILIES[model_type]


def decode_attention(config) -> str:
    """The CPU attention kernel that decodes fastest for this shape (one query per step).

    Multi-head models: eager (the fused kernel costs ~0.75 ms/layer against ~0.13 ms at the 1.3B
    shape). Grouped-query models: sdpa, which reads the shared keys and values in place where
    eager first copies them once per query head (Gemma 3 270M, 1 thread: 32–33 tok/s against
    24–25; docs/benchmarks.md).
    """
    heads = getattr(config, "num_attention_heads", 1)
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    return "sdpa" if kv_heads < heads else "eager"


def get_module(root: nn.Module, dotted: str) -> nn.Module:
    for part in dotted.split("."):
        root = getattr(root, part)
    return root


def set_module(root: nn.Module, dotted: str, module: nn.Module) -> None:
    parent, _, leaf = dotted.rpartition(".")
    setattr(get_module(root, parent) if parent else root, leaf, module)


def layers(model: nn.Module) -> nn.ModuleList:
    return get_module(model, family_of(model).backbone).layers


def decoder_linear_names(model: nn.Module) -> list[str]:
    """Dotted names (from the CausalLM) of every projection inside the decoder layers."""
    fam = family_of(model)
    names = []
    for i, _ in enumerate(layers(model)):
        for rel in (*fam.qkv, fam.attn_out, *fam.mlp_in, fam.mlp_out):
            names.append(f"{fam.backbone}.layers.{i}.{rel}")
    return names


def check_model_dir(path: str | Path) -> Path:
    """A folder ``from_pretrained`` can read, of a supported family, not already quantized."""
    path = Path(path)
    if not path.exists():
        raise ModelLoadError(
            f"모델 경로가 없어요: {path}",
            "--base 에 save_pretrained로 저장한 폴더를 주세요 (연습용: python -m kmed.llm.compression.teacher --out models/kb-teacher).",
        )
    if not (path / "config.json").is_file():
        raise ModelLoadError(
            f"{path} 에 config.json이 없어서 Hugging Face 모델 폴더가 아니에요.",
            "save_pretrained로 저장한 폴더(또는 허브에서 받은 스냅샷 폴더)를 주세요.",
        )
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(path)
    except (ValueError, OSError, KeyError) as exc:
        raise ModelLoadError(f"{path}/config.json 을 읽을 수 없어요: {exc}") from exc
    family_of(config)
    if (path / "kmed_quantization.json").is_file() or getattr(config, "quantization_config", None):
        raise ConfigError(
            f"{path} 는 이미 양자화된 모델이에요.", "양자화 전 모델(fp32/bf16)을 --base 로 주세요."
        )
    return path
