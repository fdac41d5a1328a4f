"""Load a Gemma 3 text model for ``kmed.llm.gemma_decode`` without transformers' model classes.

    from kmed.llm.gemma_native import load_native
    model = load_native("models/gemma-kmed/model")      # None (and why) when the folder is not one it reads
    decoder = GemmaDecoder(model)

Why: the decoder needs only the weights, yet building transformers' ``Gemma3ForCausalLM`` imports
about 1,500 modules (torch._dynamo, torch.distributed.tensor, scipy, sympy) and costs 135 MiB and
over a second before a weight is read. This loader imports torch and kmed's quantized layers only,
reads ``config.json`` and the safetensors file, and builds the same tree of names
(``model.layers[i].self_attn.q_proj`` …) from plain modules, so the decoder cannot tell the two
apart. The rotary tables follow transformers' default rope exactly, and a test compares the
logits of both loads of the same folder.

Reads: a ``kmed compress`` folder whose modules are ``int8_wo`` / ``int8_embedding`` (the CPU
recipes' output), or a plain transformers folder (``model.safetensors`` in fp32/bf16). Anything else
(int4, dynamic int8, bitsandbytes, sharded weights, rope scaling, soft-capping) returns None with
the reason, and the caller keeps transformers.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import torch
from torch import nn

from kmed.llm.compression.ckpt import iter_safetensors
from kmed.llm.compression.qlinear import Int8Embedding, Int8WeightOnlyLinear

QUANT_MANIFEST = "kmed_quantization.json"
READABLE_KINDS = {"int8_wo", "int8_embedding"}


class NativeNorm(nn.Module):
    """Gemma's RMSNorm parameters (the decoder computes it)."""

    def __init__(self, weight: torch.Tensor, eps: float):
        super().__init__()
        self.weight = nn.Parameter(weight, requires_grad=False)
        self.eps = eps


class ScaledEmbedding(nn.Module):
    """Gemma's embedding: rows times √hidden, the factor rounded to the weight's dtype first."""

    def __init__(self, weight: torch.Tensor, scale: float):
        super().__init__()
        self.weight = nn.Parameter(weight, requires_grad=False)
        self.register_buffer("scale", torch.tensor(scale, dtype=weight.dtype), persistent=False)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return nn.functional.embedding(ids, self.weight) * self.scale


class Rotary(nn.Module):
    """transformers' default rope for each layer type: ``cos``/``sin`` of position × inv_freq, doubled."""

    def __init__(self, config):
        super().__init__()
        self.inv_freq = {}
        for layer_type, params in config.rope_parameters.items():
            base = params["rope_theta"]
            dim = config.head_dim
            self.inv_freq[layer_type] = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))

    def forward(self, x: torch.Tensor, position_ids: torch.Tensor, layer_type: str):
        freqs = position_ids[..., None].float() * self.inv_freq[layer_type].to(x.device)
        emb = torch.cat((freqs, freqs), dim=-1)
        return emb.cos().to(x.dtype), emb.sin().to(x.dtype)


class NativeGemma(nn.Module):
    """The names ``GemmaDecoder`` reads, holding the checkpoint's tensors."""

    def __init__(self, config, backbone: nn.Module, lm_head: nn.Module, eos_token_ids: set[int]):
        super().__init__()
        self.config = config
        self.model = backbone
        self.lm_head = lm_head
        self.eos_token_ids = eos_token_ids

    @property
    def device(self) -> torch.device:
        return self.lm_head.weight_int8.device if hasattr(self.lm_head, "weight_int8") else self.lm_head.weight.device


def _gemma3_config(folder: Path) -> tuple[dict | None, str | None]:
    """``config.json`` as read when it names a Gemma 3 text model, else ``(None, why not)``."""
    try:
        raw = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return None, f"config.json: {exc}"
    if raw.get("model_type") != "gemma3_text":
        return None, f"model_type {raw.get('model_type')!r}"
    return raw, None


def is_gemma3(folder: str | Path) -> bool:
    """Whether a model folder holds a Gemma 3 text model (its ``config.json`` model_type)."""
    return _gemma3_config(Path(folder))[0] is not None


def read_config(folder: Path) -> tuple[SimpleNamespace | None, str | None]:
    """``config.json`` as attributes, rope parameters in transformers 5's per-layer-type form."""
    raw, why_not = _gemma3_config(folder)
    if raw is None:
        return None, why_not
    layers = raw["num_hidden_layers"]
    if not raw.get("layer_types"):
        every = raw.get("sliding_window_pattern") or raw.get("_sliding_window_pattern") or 6
        raw["layer_types"] = ["full_attention" if (i + 1) % every == 0 else "sliding_attention" for i in range(layers)]
    rope = raw.get("rope_parameters")
    if not rope:
        if raw.get("rope_scaling"):
            return None, "rope scaling"
        rope = {"full_attention": {"rope_theta": raw.get("rope_theta", 1_000_000.0), "rope_type": "default"},
                "sliding_attention": {"rope_theta": raw.get("rope_local_base_freq", 10_000.0), "rope_type": "default"}}
    if any((rope.get(t) or {}).get("rope_type", "default") != "default" for t in set(raw["layer_types"])):
        return None, "rope scaling"
    raw["rope_parameters"] = rope
    defaults = {"attn_logit_softcapping": None, "final_logit_softcapping": None, "use_bidirectional_attention": False,
                "query_pre_attn_scalar": raw.get("head_dim", 256), "rms_norm_eps": 1e-6, "max_position_embeddings": 32768}
    return SimpleNamespace(**{**defaults, **raw}), None


def load_native(folder: str | Path) -> tuple[NativeGemma | None, str | None]:
    """``(model, None)``, or ``(None, why not)`` for a folder this loader does not read."""
    folder = Path(folder)
    config, why = read_config(folder)
    if config is None:
        return None, why
    if config.attn_logit_softcapping is not None or config.final_logit_softcapping is not None:
        return None, "logit soft-capping"
    quantized = (folder / QUANT_MANIFEST).is_file()
    modules: dict[str, str] = {}
    if quantized:
        manifest = json.loads((folder / QUANT_MANIFEST).read_text(encoding="utf-8"))
        modules = manifest.get("modules", {})
        if not set(modules.values()) <= READABLE_KINDS:
            return None, f"quantized modules {sorted(set(modules.values()) - READABLE_KINDS)}"
        weights = folder / manifest.get("weights", "model.safetensors")
    else:
        weights = folder / "model.safetensors"
    if not weights.is_file():
        return None, f"no {weights.name}"
    tensors = dict(iter_safetensors(weights))

    def projection(name: str) -> nn.Module:
        if modules.get(name) == "int8_wo":
            int8, scale = tensors.pop(name + ".weight_int8"), tensors.pop(name + ".weight_scale")
            layer = Int8WeightOnlyLinear(int8.shape[1], int8.shape[0], bias=False, device="meta")
            layer.weight_int8, layer.weight_scale = int8, scale
            return layer
        weight = tensors.pop(name + ".weight")
        layer = nn.Linear(weight.shape[1], weight.shape[0], bias=False, device="meta")
        layer.weight = nn.Parameter(weight, requires_grad=False)
        return layer

    def norm(name: str) -> NativeNorm:
        return NativeNorm(tensors.pop(name + ".weight"), config.rms_norm_eps)

    embed_scale = config.hidden_size ** 0.5
    if modules.get("model.embed_tokens") == "int8_embedding":
        int8, scale = tensors.pop("model.embed_tokens.weight_int8"), tensors.pop("model.embed_tokens.weight_scale")
        embed = Int8Embedding(int8.shape[0], int8.shape[1], scale.dtype, device="meta", embed_scale=embed_scale)
        embed.weight_int8, embed.weight_scale = int8, scale
    else:
        embed = ScaledEmbedding(tensors.pop("model.embed_tokens.weight"), embed_scale)
    layers = nn.ModuleList()
    for i in range(config.num_hidden_layers):
        p = f"model.layers.{i}."
        layer = nn.Module()
        layer.self_attn = nn.Module()
        for name in ("q_proj", "k_proj", "v_proj", "o_proj"):
            setattr(layer.self_attn, name, projection(p + "self_attn." + name))
        layer.self_attn.q_norm, layer.self_attn.k_norm = norm(p + "self_attn.q_norm"), norm(p + "self_attn.k_norm")
        layer.mlp = nn.Module()
        for name in ("gate_proj", "up_proj", "down_proj"):
            setattr(layer.mlp, name, projection(p + "mlp." + name))
        for name in ("input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm", "post_feedforward_layernorm"):
            setattr(layer, name, norm(p + name))
        layers.append(layer)
    backbone = nn.Module()
    backbone.embed_tokens, backbone.layers, backbone.norm = embed, layers, norm("model.norm")
    backbone.rotary_emb = Rotary(config)
    if "lm_head" in modules or "lm_head.weight" in tensors:
        lm_head = projection("lm_head")
    else:  # tied to the embedding
        lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False, device="meta")
        lm_head.weight = embed.weight
    if tensors:
        return None, f"unread tensors, e.g. {next(iter(tensors))}"
    return NativeGemma(config, backbone, lm_head, _eos_ids(folder)).eval(), None


def _eos_ids(folder: Path) -> set[int]:
    ids: set[int] = set()
    for source in (folder / "generation_config.json", folder / "config.json"):
        try:
            value = json.loads(source.read_text(encoding="utf-8")).get("eos_token_id")
        except (OSError, ValueError):
            continue
        ids |= {value} if isinstance(value, int) else set(value or ())
    return ids
