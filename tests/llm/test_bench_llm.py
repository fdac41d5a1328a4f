"""``kmed bench llm`` on a tiny shape: every variant reports the issue's fields, ratios are against fp32,
and the synthetic checkpoints load through the same code as real ones."""

from __future__ import annotations

import json

import pytest
import torch

from kmed.llm import bench
from kmed.llm.models import ModelShape

TINY = ModelShape(name="tiny-bench", arch="gpt_neox", hidden_size=64, num_layers=2, num_heads=4, num_kv_heads=4,
                  intermediate_size=256, vocab_size=512, rotary_pct=0.5, max_position=256)
FIELDS = {"bytes_on_disk", "peak_rss_bytes", "ttft_s", "decode_tok_s", "size_ratio_vs_fp16", "decode_speedup_vs_fp32",
          "peak_memory_ratio_vs_fp32", "ceiling_decode_tok_s", "ceiling_fraction"}


@pytest.fixture()
def tiny_table(monkeypatch):
    import kmed.llm.models as models

    monkeypatch.setattr(models, "get_shape", lambda name: TINY)


@pytest.fixture()
def in_process(monkeypatch):
    """Measure in this process (the plumbing under test); the slow test below uses real subprocesses."""
    from kmed.llm.compression import evaluate, measure

    def fake(path, prompt_tokens, new_tokens, prompt_ids=None, extra_args=(), **_):
        args = [str(path), "--prompt-tokens", str(prompt_tokens), "--new-tokens", str(new_tokens), *extra_args]
        monkeypatch.setattr("sys.stdin", __import__("io").StringIO(json.dumps(prompt_ids)))
        return measure.main(args + (["--prompt-ids-stdin"] if prompt_ids else []))

    monkeypatch.setattr(evaluate, "measure_in_subprocess", fake)


def test_bench_reports_every_variant_against_fp32(tiny_table, in_process, tmp_path):
    _check_bench(tmp_path)


@pytest.mark.slow
def test_bench_measures_each_variant_in_its_own_process(tiny_table, tmp_path):
    _check_bench(tmp_path)


def _check_bench(tmp_path):
    result = bench.run_bench("tiny-bench", layers=2, new_tokens=4, prompt_tokens=32, variants=("int4", "student+int4"),
                             workdir=tmp_path, pruned_prompt_tokens=16, log=lambda _: None)
    assert list(result["variants"]) == ["fp32", "int4", "student+int4"]  # fp32 is always the baseline
    assert result["memory_bandwidth_bytes_s"] > 1e8 and set(result["ceiling_decode_tok_s"]) == set(result["variants"])
    assert result["nproc"] and len(result["load_average_before"]) == 3
    fp32, int4, student = (result["variants"][k] for k in ("fp32", "int4", "student+int4"))
    for row in (fp32, int4, student):
        assert FIELDS <= set(row)
        assert row["decode_tok_s"] > 0 and row["ttft_s"] > 0 and row["peak_rss_bytes"] > 50e6
    assert fp32["decode_speedup_vs_fp32"] == 1.0 and fp32["peak_memory_ratio_vs_fp32"] == 1.0
    assert fp32["size_ratio_vs_fp16"] == pytest.approx(2.0, rel=0.02)  # fp32 is twice fp16
    assert int4["bytes_on_disk"] < 0.35 * fp32["bytes_on_disk"]
    assert student["layers"] == 1 and student["bytes_read_per_token"] < int4["bytes_read_per_token"]
    assert int4["ttft_s_at_16_tokens"] is not None
    table = bench.markdown(result)
    assert "| int4 |" in table and "ceiling" in table
    json.dumps(result)  # the --json output is plain data


def test_synthetic_int4_checkpoint_is_what_quantize_would_write(tmp_path):
    from kmed.llm.compression.quantize import load_quantized
    from kmed.llm.compression.synth import write_random_checkpoint

    path = write_random_checkpoint(tmp_path / "int4", TINY.to_hf_config(), scheme="int4")
    model, _ = load_quantized(path)
    logits = model(input_ids=torch.tensor([[3, 4, 5, 6]])).logits
    assert logits.shape == (1, 4, 512) and torch.isfinite(logits).all()


def test_unknown_variant_is_named(tiny_table, tmp_path):
    from kmed.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        bench.run_bench("tiny-bench", variants=("int3",), workdir=tmp_path, log=lambda _: None)
    assert "int3" in err.value.message and "int4" in err.value.fix


def test_grounded_prompt_has_exactly_the_requested_tokens():
    ids, info = bench.grounded_prompt_ids(512, 30080)
    assert len(ids) == 512 and info["passages_kept"] >= 1
