"""Pruning: structured (heads, MLP channels, layers) that really shrinks, and unstructured for comparison.

    stats = collect_stats(model, calibration_blocks)          # one pass with hooks
    prune_structured(model, stats, heads=0.25, mlp=0.5, layers=2)
    model.save_pretrained(out)                                # reloads with from_pretrained

Importance is activation-aware, from calibration text (KB sentences the held-out split never sees):
- an MLP channel: ‖its activation‖₂ · ‖its column of the down projection‖₂;
- a head (LLaMA: a KV group with its query heads; one KV head, as Gemma 3 270M: a query head): ‖its output‖₂ · ‖its columns of the output projection‖_F;
- a layer: 1 − cos(input, output) of its hidden states (block influence: a layer that barely
  turns the residual stream goes first);
- GPT-NeoX residual channels: ‖layer-norm outputs‖₂ summed over layers.

Every layer keeps the same number of heads and channels (each layer picks its own), so one config
still describes the model and ``from_pretrained`` rebuilds it. GPT-NeoX ties the head size to
``hidden_size / num_attention_heads``, so removing heads there also narrows the residual stream
to ``heads × head_size`` channels (Minitron-style width pruning); LLaMA keeps its hidden size.
"""

from __future__ import annotations

import math
from collections import defaultdict

import torch
from torch import nn

from kmed.errors import ConfigError
from kmed.llm.compression.arch import decoder_linear_names, family_of, get_module, layers, set_module


@torch.no_grad()
def collect_stats(model: nn.Module, blocks: torch.Tensor, batch_size: int = 8) -> dict:
    """Per-input-channel ‖x‖₂² of every decoder linear, per-channel norm outputs, and block influence."""
    fam = family_of(model)
    sq = defaultdict(lambda: 0.0)  # linear name -> sum of x² per input channel
    norm_sq = defaultdict(lambda: 0.0)  # residual channel -> sum of squares of norm outputs
    influence = defaultdict(list)
    hooks = []

    def linear_hook(name):
        def hook(_mod, args):
            x = args[0].detach().float().reshape(-1, args[0].shape[-1])
            sq[name] = sq[name] + (x * x).sum(0)
        return hook

    def norm_hook(_mod, _args, out):
        y = out.detach().float().reshape(-1, out.shape[-1])
        norm_sq["hidden"] = norm_sq["hidden"] + (y * y).sum(0)

    def layer_hook(i):
        def hook(_mod, args, kwargs, out):
            h_in = (args[0] if args else kwargs["hidden_states"]).detach().float()
            h_out = (out[0] if isinstance(out, tuple) else out).detach().float()
            influence[i].append(float(1 - torch.nn.functional.cosine_similarity(h_in, h_out, dim=-1).mean()))
        return hook

    for name in decoder_linear_names(model):
        hooks.append(get_module(model, name).register_forward_pre_hook(linear_hook(name)))
    for i, layer in enumerate(layers(model)):
        hooks.append(layer.register_forward_hook(layer_hook(i), with_kwargs=True))
        for norm in fam.norms:
            hooks.append(get_module(layer, norm).register_forward_hook(norm_hook))
    try:
        model.eval()
        for i in range(0, len(blocks), batch_size):
            model(input_ids=blocks[i : i + batch_size])
    finally:
        for h in hooks:
            h.remove()
    return {"act_sq": dict(sq), "hidden_sq": norm_sq.get("hidden"), "influence": {i: sum(v) / len(v) for i, v in influence.items()}}


def _slice_linear(lin: nn.Linear, out_idx: torch.Tensor | None = None, in_idx: torch.Tensor | None = None) -> nn.Linear:
    w = lin.weight.detach()
    if out_idx is not None:
        w = w[out_idx]
    if in_idx is not None:
        w = w[:, in_idx]
    new = nn.Linear(w.shape[1], w.shape[0], bias=lin.bias is not None, dtype=w.dtype)
    new.weight.data.copy_(w)
    if lin.bias is not None:
        new.bias.data.copy_(lin.bias.detach() if out_idx is None else lin.bias.detach()[out_idx])
    return new


def _keep(scores: torch.Tensor, n_keep: int) -> torch.Tensor:
    """Indices of the ``n_keep`` highest scores, in their original order."""
    return torch.sort(torch.topk(scores, n_keep).indices).values


def _act_norm(stats: dict, name: str, n: int, importance: str) -> torch.Tensor:
    if importance == "magnitude" or name not in stats["act_sq"]:
        return torch.ones(n)
    return stats["act_sq"][name].sqrt()


def drop_layers(model: nn.Module, drop: list[int]) -> list[int]:
    """Remove whole decoder layers; renumbers the rest so the KV cache stays consistent."""
    fam = family_of(model)
    old = layers(model)
    kept = [i for i in range(len(old)) if i not in set(drop)]
    if not kept:
        raise ConfigError("모든 층을 지울 수는 없어요.", "prune.layers 를 줄이세요.")
    new = nn.ModuleList([old[i] for i in kept])
    for idx, layer in enumerate(new):
        for mod in layer.modules():
            if hasattr(mod, "layer_idx"):
                mod.layer_idx = idx
    get_module(model, fam.backbone).layers = new
    model.config.num_hidden_layers = len(kept)
    if getattr(model.config, "layer_types", None):
        model.config.layer_types = [model.config.layer_types[i] for i in kept]
    return kept


def prune_mlp(model: nn.Module, stats: dict, fraction: float, importance: str = "activation") -> int:
    fam = family_of(model)
    size = model.config.intermediate_size
    n_keep = max(1, size - int(round(size * fraction)))
    for li, layer in enumerate(layers(model)):
        prefix = f"{fam.backbone}.layers.{li}."
        down = get_module(layer, fam.mlp_out)
        score = _act_norm(stats, prefix + fam.mlp_out, size, importance) * down.weight.detach().float().norm(dim=0)
        if importance == "magnitude":
            score = score * get_module(layer, fam.mlp_in[0]).weight.detach().float().norm(dim=1)
        keep = _keep(score, n_keep)
        for rel in fam.mlp_in:
            set_module(layer, rel, _slice_linear(get_module(layer, rel), out_idx=keep))
        set_module(layer, fam.mlp_out, _slice_linear(down, in_idx=keep))
    model.config.intermediate_size = n_keep
    return n_keep


def _head_scores(model, stats, layer, li, n_units: int, unit_dim: int, importance: str) -> torch.Tensor:
    fam = family_of(model)
    out = get_module(layer, fam.attn_out)
    act = _act_norm(stats, f"{fam.backbone}.layers.{li}.{fam.attn_out}", out.in_features, importance)
    col = out.weight.detach().float().norm(dim=0) * act  # per input column of the output projection
    return col.reshape(n_units, unit_dim).norm(dim=1)


def _gqa_shape(cfg) -> tuple[int, int, int]:
    """(head_dim, KV groups, query heads per group) of a grouped-query config."""
    hd = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    return hd, cfg.num_key_value_heads, cfg.num_attention_heads // cfg.num_key_value_heads


def prune_heads_llama(model: nn.Module, stats: dict, fraction: float, importance: str) -> int:
    cfg = model.config
    hd, groups, rep = _gqa_shape(cfg)
    n_keep = max(1, groups - int(round(groups * fraction)))
    for li, layer in enumerate(layers(model)):
        attn = layer.self_attn
        keep = _keep(_head_scores(model, stats, layer, li, groups, rep * hd, importance), n_keep)
        q_rows = torch.cat([torch.arange(g * rep * hd, (g + 1) * rep * hd) for g in keep.tolist()])
        kv_rows = torch.cat([torch.arange(g * hd, (g + 1) * hd) for g in keep.tolist()])
        attn.q_proj = _slice_linear(attn.q_proj, out_idx=q_rows)
        attn.k_proj = _slice_linear(attn.k_proj, out_idx=kv_rows)
        attn.v_proj = _slice_linear(attn.v_proj, out_idx=kv_rows)
        attn.o_proj = _slice_linear(attn.o_proj, in_idx=q_rows)
    cfg.head_dim = hd  # explicit: hidden_size / heads no longer gives it
    cfg.num_attention_heads, cfg.num_key_value_heads = n_keep * rep, n_keep
    return n_keep * rep


def prune_query_heads(model: nn.Module, stats: dict, fraction: float, importance: str) -> int:
    """Grouped-query attention with one KV head (Gemma 3 270M): remove query heads inside each group.

    Removing a KV group there would remove attention altogether, so the keys and values stay and
    each group keeps its ``rep − round(rep · fraction)`` most important query heads.
    """
    cfg = model.config
    hd, groups, rep = _gqa_shape(cfg)
    n_keep = max(1, rep - int(round(rep * fraction)))
    for li, layer in enumerate(layers(model)):
        attn = layer.self_attn
        scores = _head_scores(model, stats, layer, li, groups * rep, hd, importance).view(groups, rep)
        heads = [g * rep + h for g in range(groups) for h in _keep(scores[g], n_keep).tolist()]
        rows = torch.cat([torch.arange(h * hd, (h + 1) * hd) for h in heads])
        attn.q_proj = _slice_linear(attn.q_proj, out_idx=rows)
        attn.o_proj = _slice_linear(attn.o_proj, in_idx=rows)
        attn.num_key_value_groups = n_keep  # read by the attention kernel to repeat K and V
    cfg.head_dim = hd
    cfg.num_attention_heads = groups * n_keep
    return groups * n_keep


def prune_heads_neox(model: nn.Module, stats: dict, fraction: float, importance: str) -> int:
    cfg = model.config
    heads, hd = cfg.num_attention_heads, cfg.hidden_size // cfg.num_attention_heads
    n_keep = max(1, heads - int(round(heads * fraction)))
    new_hidden = n_keep * hd
    hidden_score = stats.get("hidden_sq")
    hidden_score = hidden_score.sqrt() if hidden_score is not None and importance == "activation" else None
    if hidden_score is None:
        hidden_score = model.gpt_neox.embed_in.weight.detach().float().norm(dim=0)
    keep_c = _keep(hidden_score, new_hidden)
    neox = model.gpt_neox
    for li, layer in enumerate(neox.layers):
        keep_h = _keep(_head_scores(model, stats, layer, li, heads, hd, importance), n_keep).tolist()
        qkv_rows = torch.cat([torch.arange(h * 3 * hd, (h + 1) * 3 * hd) for h in keep_h])
        dense_cols = torch.cat([torch.arange(h * hd, (h + 1) * hd) for h in keep_h])
        att = layer.attention
        att.query_key_value = _slice_linear(att.query_key_value, out_idx=qkv_rows, in_idx=keep_c)
        att.dense = _slice_linear(att.dense, out_idx=keep_c, in_idx=dense_cols)
        att.head_size, att.hidden_size = hd, new_hidden
        layer.mlp.dense_h_to_4h = _slice_linear(layer.mlp.dense_h_to_4h, in_idx=keep_c)
        layer.mlp.dense_4h_to_h = _slice_linear(layer.mlp.dense_4h_to_h, out_idx=keep_c)
        for norm in (layer.input_layernorm, layer.post_attention_layernorm):
            _slice_norm(norm, keep_c)
    _slice_norm(neox.final_layer_norm, keep_c)
    emb = neox.embed_in
    new_emb = nn.Embedding(emb.num_embeddings, new_hidden, padding_idx=emb.padding_idx, dtype=emb.weight.dtype)
    new_emb.weight.data.copy_(emb.weight.detach()[:, keep_c])
    neox.embed_in = new_emb
    model.lm_head = _slice_linear(model.lm_head, in_idx=keep_c)
    cfg.hidden_size, cfg.num_attention_heads = new_hidden, n_keep
    cfg.tie_word_embeddings = False
    return n_keep


def _slice_norm(norm: nn.Module, keep: torch.Tensor) -> None:
    norm.weight = nn.Parameter(norm.weight.detach()[keep].clone())
    if getattr(norm, "bias", None) is not None:
        norm.bias = nn.Parameter(norm.bias.detach()[keep].clone())
    norm.normalized_shape = (len(keep),)


def prune_structured(model: nn.Module, stats: dict, heads: float = 0.0, mlp: float = 0.0, layers_to_drop: int = 0,
                     importance: str = "activation") -> dict:
    """Apply layer, head and MLP pruning in place; returns what was removed."""
    fam = family_of(model)
    report: dict = {"arch": fam.model_type}
    n_layers = len(layers(model))
    if layers_to_drop >= n_layers:
        raise ConfigError(f"층 {n_layers}개 중 {layers_to_drop}개를 지울 수 없어요.", f"prune.layers 를 {n_layers - 1} 이하로 주세요.")
    if heads:
        if fam.model_type == "gpt_neox":
            prune = prune_heads_neox
        elif model.config.num_key_value_heads == 1:
            prune = prune_query_heads
        else:
            prune = prune_heads_llama
        report["heads"] = prune(model, stats, heads, importance)
    if mlp:
        report["intermediate_size"] = prune_mlp(model, stats, mlp, importance)
    if layers_to_drop:
        ranked = sorted(stats["influence"], key=lambda i: stats["influence"][i])
        drop = sorted(ranked[:layers_to_drop])
        report["dropped_layers"] = drop
        report["kept_layers"] = drop_layers(model, drop)
    return report


@torch.no_grad()
def prune_unstructured(model: nn.Module, stats: dict | None, sparsity: float, importance: str = "activation") -> dict:
    """Zero the lowest-scoring ``sparsity`` share of each output row (Wanda: |W|·‖x‖, or |W|)."""
    zeroed = total = 0
    for name in decoder_linear_names(model):
        lin = get_module(model, name)
        w = lin.weight
        score = w.detach().float().abs()
        if importance == "activation" and stats and name in stats["act_sq"]:
            score = score * stats["act_sq"][name].sqrt()[None, :]
        k = int(math.floor(w.shape[1] * sparsity))
        if k == 0:
            continue
        idx = torch.topk(score, k, dim=1, largest=False).indices
        w.data.scatter_(1, idx, 0.0)
        zeroed += idx.numel()
        total += w.numel()
    return {"sparsity": zeroed / max(total, 1), "zeroed": zeroed,
            "note": "dense storage and dense kernels: the same bytes on disk and the same time per token"}
