"""The model table agrees with its dataclass and with the published sizes; tiny models round-trip."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import yaml

from kmed.errors import ConfigError
from kmed.llm.models import MODELS_YAML, ModelShape, get_shape, list_models, measure_memory_bandwidth


def test_yaml_keys_match_the_dataclass():
    raw = yaml.safe_load(MODELS_YAML.read_text(encoding="utf-8"))
    field_names = {f.name for f in dataclasses.fields(ModelShape)} - {"name"}
    required = {
        f.name
        for f in dataclasses.fields(ModelShape)
        if f.default is dataclasses.MISSING and f.name != "name"
    }
    assert len(raw) >= 6
    for name, entry in raw.items():
        assert set(entry) <= field_names, (name, set(entry) - field_names)
        assert required <= set(entry), (name, required - set(entry))
        assert entry["source_url"].startswith("https://huggingface.co/") and entry["source_url"].endswith("config.json")
        assert entry["published_params"], name


def test_table_covers_the_issue_models():
    names = set(list_models())
    assert {"polyglot-ko-1.3b", "polyglot-ko-3.8b", "polyglot-ko-5.8b", "polyglot-ko-12.8b"} <= names
    assert get_shape("nlpai-lab/kullm-polyglot-12.8b-v2").num_layers == 40
    assert get_shape("polyglot-ko-5.8b").rotary_pct == 0.25
    assert all(get_shape(n).rotary_pct == 0.5 for n in ("polyglot-ko-1.3b", "polyglot-ko-3.8b", "polyglot-ko-12.8b"))
    assert {get_shape(n).arch for n in names} == {"gpt_neox", "llama", "gemma3_text"}
    assert get_shape("google/gemma-3-270m").head_dim == 256
    with pytest.raises(ConfigError):
        get_shape("no-such-model")


@pytest.mark.parametrize("name", list_models())
def test_hf_config_builds_at_published_size(name):
    from transformers import AutoModelForCausalLM

    shape = get_shape(name)
    config = shape.to_hf_config()
    assert config.model_type == shape.arch
    with torch.device("meta"):  # no memory: shapes only
        model = AutoModelForCausalLM.from_config(config)
    counted = sum(p.numel() for p in model.parameters())
    assert counted == shape.param_count()
    assert abs(counted - shape.published_params) / shape.published_params < 0.01
    if shape.arch == "gpt_neox":
        assert config.rope_parameters["partial_rotary_factor"] == shape.rotary_pct
    assert ModelShape.from_hf_config(config, name=name) == dataclasses.replace(
        shape, source_url="", hf_id="", published_params=None
    )


def test_costs_are_consistent():
    shape = get_shape("polyglot-ko-1.3b")
    assert shape.bytes_on_disk(32) == shape.param_count() * 4
    assert shape.bytes_on_disk(8) == shape.param_count()
    # The input embedding is a lookup, so a token reads less than the whole checkpoint.
    assert shape.bytes_per_decoded_token(16) < shape.bytes_on_disk(16)
    assert shape.bytes_per_decoded_token(16, context_tokens=1000) > shape.bytes_per_decoded_token(16)
    fp32, int8 = shape.decode_ceiling_tok_s(19e9, 32), shape.decode_ceiling_tok_s(19e9, 8)
    assert 3.0 < fp32 < 4.5  # the stack notes measured ~3.7 tok/s at ~19 GB/s
    assert 3.9 < int8 / fp32 <= 4.0
    # Grouped-query attention: 8 KV heads of 32 means a quarter of the cache of full attention.
    llama = get_shape("llama-3-open-ko-8b")
    full = dataclasses.replace(llama, num_kv_heads=32)
    assert llama.kv_bytes_per_token() * 4 == full.kv_bytes_per_token()


def test_shape_validation():
    with pytest.raises(ConfigError):
        ModelShape(name="x", arch="gpt2", hidden_size=64, num_layers=1, num_heads=4, num_kv_heads=4,
                   intermediate_size=128, vocab_size=10)
    with pytest.raises(ConfigError):
        ModelShape(name="x", arch="llama", hidden_size=64, num_layers=1, num_heads=4, num_kv_heads=3,
                   intermediate_size=128, vocab_size=10)


def test_memory_bandwidth_is_measured():
    bandwidth = measure_memory_bandwidth(size_mb=16, repeats=2)
    assert 1e8 < bandwidth < 1e13


@pytest.mark.parametrize("arch", ["gpt_neox", "llama"])
def test_tiny_model_saves_and_loads_offline(tmp_path, arch):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from kmed.llm.tiny import save_tiny_model

    path = save_tiny_model(tmp_path / arch, arch=arch, texts=["열이 나고 목이 아파요.", "두통이 있어요."] * 5)
    model = AutoModelForCausalLM.from_pretrained(path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    assert model.config.model_type == arch
    assert model.config.hidden_size <= 64 and model.config.num_hidden_layers == 2
    text = "처음 보는 글자도 괜찮아요: 齒 😀"
    ids = tokenizer(text).input_ids
    assert tokenizer.decode(ids) == text  # byte fallback: nothing is unknown
    out = model.generate(torch.tensor([ids]), max_new_tokens=3, do_sample=False)
    assert out.shape[1] == len(ids) + 3


def test_kb_texts_are_korean_sentences():
    from kmed.llm.tiny import kb_texts

    texts = list(kb_texts())
    assert texts, "the shipped KB has condition and drug sections"
    assert all(any("가" <= ch <= "힣" for ch in t) for t in texts)
