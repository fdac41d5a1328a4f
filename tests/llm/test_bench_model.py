"""``kmed bench llm --model``: a real-weights folder and its compressed variants, side by side, every
ratio against the fp32 base; the llama.cpp peer runs when llama-cpp-python is installed."""

from __future__ import annotations

import importlib.util
import json

import pytest
import torch

from kmed.errors import KmedError, ModelLoadError
from kmed.llm import bench_model
from kmed.llm.compression.quantize import quantize_model, save_quantized

TEXTS = ["감기는 바이러스 때문에 생겨요.", "열이 나면 물을 충분히 마셔요.", "가슴이 쓰리고 신물이 올라와요."] * 4


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from kmed.llm.tiny import save_tiny_model

    root = tmp_path_factory.mktemp("bench-model")
    base = save_tiny_model(root / "base", arch="gemma3_text", texts=TEXTS)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    quantize_model(model, "int8")
    save_quantized(model, root / "small" / "model", AutoTokenizer.from_pretrained(base))
    return base, root / "small"


@pytest.fixture()
def in_process(monkeypatch):
    from kmed.llm.compression import evaluate, measure

    def fake(path, prompt_tokens, new_tokens, prompt_ids=None, threads=None, extra_args=None, **_):
        monkeypatch.setattr("sys.stdin", __import__("io").StringIO(json.dumps(prompt_ids)))
        return measure.main([str(path), "--prompt-tokens", str(prompt_tokens), "--new-tokens", str(new_tokens),
                             "--prompt-ids-stdin", *(extra_args or [])])

    monkeypatch.setattr(evaluate, "measure_in_subprocess", fake)
    monkeypatch.setattr("kmed.llm.models.measure_memory_bandwidth", lambda **_: 10e9)


def test_base_and_variant_side_by_side(folders, in_process):
    base, small = folders
    result = bench_model.run_model_bench(base, [small], prompt_tokens=24, new_tokens=4, repeats=2, log=lambda _: None)
    # A compress --out folder is read through its model/; a Gemma variant is also timed with kmed's decoder.
    assert list(result["variants"]) == ["fp32", "small", "small+kmed-decode"]
    assert [r["decoder"] for r in result["variants"]["small+kmed-decode"]["runs"]] == ["kmed", "kmed"]
    assert [r["decoder"] for r in result["variants"]["small"]["runs"]] == ["transformers", "transformers"]
    fp32, variant = result["variants"]["fp32"], result["variants"]["small"]
    assert fp32["decode_speedup_vs_fp32"] == 1.0 and fp32["size_ratio_vs_fp16"] == pytest.approx(2.0, rel=0.05)
    assert variant["bytes_on_disk"] < fp32["bytes_on_disk"]
    assert len(variant["runs"]) == 2 and variant["decode_tok_s_spread"][0] <= variant["decode_tok_s"]
    assert result["peer"] is None and result["weights"] == "real"
    assert fp32["prompt_tokens"] == 24
    assert "| small |" in bench_model.markdown(result)


def test_bad_variants_and_peers_are_refused(folders, tmp_path):
    base, _ = folders
    with pytest.raises(ModelLoadError):
        bench_model.run_model_bench(base, [tmp_path], log=lambda _: None)
    with pytest.raises(KmedError, match="llama.cpp"):
        bench_model.run_model_bench(base, [], peer="vllm", log=lambda _: None)
    with pytest.raises(KmedError, match="GGUF"):
        bench_model.run_model_bench(base, [], peer="llama.cpp", log=lambda _: None)


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None, reason="llama-cpp-python (kmed[llamacpp]) not installed")
def test_llamacpp_peer_on_the_fetched_model():
    from kmed.paths import PROJECT_ROOT

    base = PROJECT_ROOT / "models" / "gemma-3-270m"
    if bench_model.gguf_of(base) is None:
        pytest.skip("kmed model fetch gemma-3-270m has not been run")
    result = bench_model.run_model_bench(base, [], prompt_tokens=64, new_tokens=8, repeats=1, peer="llama.cpp",
                                         log=lambda _: None)
    assert result["peer"]["decode_tok_s"] > 0 and result["peer"]["size_ratio_vs_fp16"] < 0.5
