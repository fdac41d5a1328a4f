"""Merging a LoRA adapter into its base (kmed train merge): same logits as base + adapter, one plain folder."""

from __future__ import annotations

import json

import pytest
import torch

from kmed.errors import ConfigError
from kmed.llm.training.merge import adapter_base, merge_adapter

TEXTS = ["가슴이 타는 듯이 쓰려요.", "신물이 올라와요.", "열이 나고 목이 아파요."] * 4


@pytest.fixture(scope="module")
def adapter(tmp_path_factory):
    """A tiny Gemma 3 with a LoRA adapter whose weights are not zero (as after training)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from kmed.llm.tiny import save_tiny_model

    root = tmp_path_factory.mktemp("merge")
    base = save_tiny_model(root / "base", arch="gemma3_text", texts=TEXTS)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    peft_model = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", r=4, lora_alpha=8,
                                                  target_modules=["q_proj", "v_proj", "down_proj"]))
    torch.manual_seed(0)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.05)
    out = root / "adapter"
    peft_model.save_pretrained(out)
    (out / "kmed_adapter.json").write_text(json.dumps({"base_model": str(base)}), encoding="utf-8")
    ids = torch.tensor([[2, 5, 9, 11, 7]])
    with torch.no_grad():
        expected = peft_model(ids).logits
    return {"base": base, "adapter": out, "ids": ids, "logits": expected}


def test_merged_model_gives_the_adapter_logits(adapter, tmp_path):
    from transformers import AutoModelForCausalLM

    manifest = merge_adapter(adapter["adapter"], tmp_path / "merged")
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "merged", dtype=torch.float32)
    with torch.no_grad():
        logits = merged(adapter["ids"]).logits
    torch.testing.assert_close(logits, adapter["logits"], atol=1e-4, rtol=1e-4)
    assert not any("lora" in name for name, _ in merged.named_parameters())
    assert manifest["base_model"] == str(adapter["base"]) and manifest["adapter_weights_sha256"]
    assert (tmp_path / "merged" / "manifest.json").is_file() and (tmp_path / "merged" / "tokenizer.json").is_file()


def test_merge_refuses_bad_input_with_the_fix(adapter, tmp_path):
    with pytest.raises(ConfigError, match="어댑터 폴더"):
        merge_adapter(tmp_path / "nowhere", tmp_path / "out")
    with pytest.raises(ConfigError, match="LoRA 어댑터 폴더가 아니에요"):
        adapter_base(tmp_path)
    (tmp_path / "taken").mkdir()
    with pytest.raises(ConfigError, match="--overwrite"):
        merge_adapter(adapter["adapter"], tmp_path / "taken")
    with pytest.raises(ConfigError, match="기본 모델"):
        merge_adapter(adapter["adapter"], tmp_path / "out", base=str(tmp_path / "no-base"))
    assert not (tmp_path / "out").exists()


def test_cli_merges(adapter, tmp_path):
    from typer.testing import CliRunner

    from kmed.cli.main import app

    result = CliRunner().invoke(app, ["--no-record", "train", "merge", "--adapter", str(adapter["adapter"]),
                                      "--out", str(tmp_path / "m")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "m" / "config.json").is_file()
    again = CliRunner().invoke(app, ["--no-record", "train", "merge", "--adapter", str(adapter["adapter"]),
                                     "--out", str(tmp_path / "m")])
    assert again.exit_code != 0 and isinstance(again.exception, ConfigError) and "--overwrite" in str(again.exception)
