"""Structured pruning shrinks tiny GPT-NeoX and LLaMA models that reload with from_pretrained; the
importance scores pick what they should; unstructured pruning zeroes weights but saves nothing."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM

from kmed.errors import ConfigError
from kmed.llm.compression.ckpt import dir_bytes
from kmed.llm.compression.prune import collect_stats, prune_structured, prune_unstructured
from kmed.llm.tiny import build_tiny_model

BLOCKS = torch.randint(3, 512, (4, 32), generator=torch.Generator().manual_seed(0))
CASES = [
    {"mlp": 0.5},
    {"heads": 0.5},
    {"layers_to_drop": 1},
    {"heads": 0.5, "mlp": 0.25, "layers_to_drop": 1},
]


def _params(model) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("arch", ["gpt_neox", "llama", "gemma3_text"])
@pytest.mark.parametrize("kwargs", CASES, ids=lambda k: "+".join(k))
def test_pruned_model_shrinks_and_reloads_exactly(arch, kwargs, tmp_path):
    model = build_tiny_model(arch)
    before = _params(model)
    stats = collect_stats(model, BLOCKS)
    report = prune_structured(model, stats, **kwargs)
    assert _params(model) < before
    with torch.no_grad():
        logits = model(input_ids=BLOCKS).logits
    model.save_pretrained(tmp_path)
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        assert torch.equal(reloaded(input_ids=BLOCKS).logits, logits)
    assert reloaded.generate(BLOCKS[:1, :4], max_new_tokens=3, do_sample=False).shape == (1, 7)
    if "mlp" in kwargs:
        assert reloaded.config.intermediate_size == report["intermediate_size"] < 128
    if "heads" in kwargs:
        assert reloaded.config.num_attention_heads == report["heads"] < 4
    if "layers_to_drop" in kwargs:
        assert reloaded.config.num_hidden_layers == 1


@pytest.mark.parametrize("arch", ["gpt_neox", "llama", "gemma3_text"])
def test_pruning_nothing_is_the_identity(arch):
    """Parity: with nothing removed, the sliced model is the original to the last bit."""
    model = build_tiny_model(arch)
    with torch.no_grad():
        reference = model(input_ids=BLOCKS).logits
    stats = collect_stats(model, BLOCKS)
    prune_structured(model, stats, mlp=0.0, heads=0.0, layers_to_drop=0)
    with torch.no_grad():
        assert torch.equal(model(input_ids=BLOCKS).logits, reference)


def test_mlp_pruning_removes_dead_channels_first():
    """Channels whose output column is zero contribute nothing: activation-aware scoring drops exactly them."""
    model = build_tiny_model("gpt_neox")
    dead = torch.arange(0, 128, 2)  # half the channels
    for layer in model.gpt_neox.layers:
        layer.mlp.dense_4h_to_h.weight.data[:, dead] = 0.0
    with torch.no_grad():
        reference = model(input_ids=BLOCKS).logits
    prune_structured(model, collect_stats(model, BLOCKS), mlp=0.5)
    with torch.no_grad():
        pruned = model(input_ids=BLOCKS).logits
    assert torch.allclose(pruned, reference, atol=1e-5)  # nothing that mattered was removed


def test_layer_pruning_drops_the_layer_that_does_nothing():
    model = build_tiny_model("llama", num_layers=3)
    layer = model.model.layers[1]  # make layer 1 an identity: zero its output projections
    layer.self_attn.o_proj.weight.data.zero_()
    layer.mlp.down_proj.weight.data.zero_()
    report = prune_structured(model, collect_stats(model, BLOCKS), layers_to_drop=1)
    assert report["dropped_layers"] == [1]
    assert [m.self_attn.layer_idx for m in model.model.layers] == [0, 1]  # renumbered for the KV cache


def test_cannot_remove_every_layer():
    model = build_tiny_model("gpt_neox")
    with pytest.raises(ConfigError):
        prune_structured(model, collect_stats(model, BLOCKS), layers_to_drop=2)


def test_unstructured_pruning_zeroes_weights_but_saves_no_bytes(tmp_path):
    model = build_tiny_model("gpt_neox")
    model.save_pretrained(tmp_path / "dense")
    report = prune_unstructured(model, collect_stats(model, BLOCKS), 0.5)
    assert report["sparsity"] == pytest.approx(0.5, abs=0.01)
    zeros = sum(int((layer.mlp.dense_h_to_4h.weight == 0).sum()) for layer in model.gpt_neox.layers)
    assert zeros >= 0.5 * 2 * 128 * 64
    model.save_pretrained(tmp_path / "sparse")
    assert dir_bytes(tmp_path / "sparse") == dir_bytes(tmp_path / "dense")
