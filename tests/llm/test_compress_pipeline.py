"""The compression pipeline on a tiny model: complete outputs, gates that stop it, atomic folders, and
bad input answered with a message and a fix."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kmed.errors import ConfigError, KmedError, ModelLoadError
from kmed.llm.compression import pipeline
from kmed.llm.compression.recipe import recipe_from_dict

FAST_EVAL = {"memory_subprocess": False, "speed_prompt_tokens": 8, "speed_new_tokens": 3, "ppl_seq_len": 64,
             "max_eval_blocks": 24}


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    from kmed.llm.compression.evaluate import medical_corpus
    from kmed.llm.tiny import save_tiny_model

    # The same cached corpus the pipeline reads, so the KB is parsed once per test session.
    return save_tiny_model(tmp_path_factory.mktemp("tiny") / "base", arch="gpt_neox", texts=medical_corpus())


def _recipe(*stages, **eval_overrides):
    return recipe_from_dict({"name": "test", "eval": {**FAST_EVAL, **eval_overrides}, "stages": list(stages)})


def test_quantize_stage_writes_a_complete_output(base, tmp_path):
    out = tmp_path / "out"
    result = pipeline.run(base, out, _recipe({"kind": "unstructured", "sparsity": 0.3, "gate": {"max_ppl_ratio": 5}},
                                            {"kind": "quantize", "scheme": "int8"}), log=lambda _: None)
    assert result["status"] == "complete"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete" and [s["name"] for s in manifest["stages"]] == ["base", "01-unstructured", "02-quantize"]
    assert manifest["recipe"]["stages"][1]["scheme"] == "int8" and manifest["versions"]["torch"]
    report = (out / "report.md").read_text()
    assert "| 02-quantize |" in report and "report.png" in report and (out / "report.png").stat().st_size > 1000
    assert (out / "model" / "kmed_quantization.json").is_file()
    stages = result["stages"]
    assert stages[1]["bytes_on_disk"] == stages[0]["bytes_on_disk"]  # unstructured: same bytes
    assert stages[2]["bytes_on_disk"] < 0.5 * stages[0]["bytes_on_disk"]
    assert all(s["ppl"] > 1 for s in stages) and stages[1]["gate"]["passed"]
    assert not list(tmp_path.glob("*.partial-*"))
    from kmed.llm.compression.quantize import load_quantized

    model, tokenizer = load_quantized(out / "model")
    assert tokenizer is not None and model.config.model_type == "gpt_neox"


def test_a_stage_past_its_tolerance_stops_the_pipeline(base, tmp_path):
    out = tmp_path / "out"
    # A random model's perplexity is already near the vocabulary size, so the size gate is the one
    # sure to trip here; the slow test trips the perplexity gate on a trained teacher.
    recipe = _recipe({"kind": "prune", "mlp": 0.25, "gate": {"min_size_ratio_saving": 0.9}},
                     {"kind": "quantize", "scheme": "int4", "group_size": 32})
    with pytest.raises(pipeline.GateFailed) as err:
        pipeline.run(base, out, recipe, log=lambda _: None)
    assert "01-prune" in err.value.message and "size saving" in err.value.message
    assert not out.exists()  # nothing that looks like a finished model
    failed = tmp_path / "out.failed"
    manifest = json.loads((failed / "manifest.json").read_text())
    assert manifest["status"] == "failed_gate" and "FAIL" in (failed / "report.md").read_text()
    assert len(manifest["stages"]) == 2  # the quantize stage never ran


def test_an_interrupted_run_leaves_no_output(base, tmp_path, monkeypatch):
    calls = []
    original = pipeline._apply

    def interrupt(stage, *args, **kwargs):
        calls.append(stage.kind)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(stage, *args, **kwargs)

    monkeypatch.setattr(pipeline, "_apply", interrupt)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        pipeline.run(base, out, _recipe({"kind": "unstructured", "sparsity": 0.1, "gate": {"max_ppl_ratio": 5}},
                                        {"kind": "quantize", "scheme": "int8"}), log=lambda _: None)
    assert calls == ["unstructured", "quantize"]
    assert list(tmp_path.iterdir()) == []


def test_existing_output_needs_overwrite(base, tmp_path):
    (tmp_path / "out").mkdir()
    with pytest.raises(ConfigError) as err:
        pipeline.run(base, tmp_path / "out", _recipe({"kind": "quantize"}), log=lambda _: None)
    assert "--overwrite" in err.value.fix


def test_bad_model_paths_and_architectures(tmp_path):
    recipe = _recipe({"kind": "quantize"})
    with pytest.raises(ModelLoadError) as err:
        pipeline.run(tmp_path / "missing", tmp_path / "out", recipe)
    assert err.value.fix
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match="config.json"):
        pipeline.run(tmp_path / "empty", tmp_path / "out", recipe)
    from transformers import GPT2Config

    GPT2Config(n_layer=1, n_embd=32, n_head=2).save_pretrained(tmp_path / "gpt2")
    with pytest.raises(ConfigError) as err:
        pipeline.run(tmp_path / "gpt2", tmp_path / "out", recipe)
    assert "gpt2" in err.value.message and "gpt_neox" in err.value.fix
    assert not (tmp_path / "out").exists()


def test_bitsandbytes_without_gpu_fails_before_any_work(base, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(ConfigError) as err:
        pipeline.run(base, tmp_path / "out", _recipe({"kind": "quantize", "scheme": "bnb_nf4"}))
    assert "GPU" in err.value.message and "int4" in err.value.fix
    assert list(tmp_path.iterdir()) == []


def test_not_enough_memory_is_refused_with_numbers(base, tmp_path, monkeypatch):
    import psutil

    class Tiny:
        available = 1024

    monkeypatch.setattr(psutil, "virtual_memory", lambda: Tiny())
    with pytest.raises(KmedError) as err:
        pipeline.run(base, tmp_path / "out", _recipe({"kind": "distill", "num_layers": 1, "steps": 1}))
    assert "메모리" in err.value.message and "GiB" in err.value.message and err.value.fix


def test_out_of_memory_during_a_stage_is_a_clear_error(base, tmp_path, monkeypatch):
    def oom(*_args, **_kwargs):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory: you tried 1 TB")

    monkeypatch.setattr(pipeline, "_apply", oom)
    with pytest.raises(KmedError) as err:
        pipeline.run(base, tmp_path / "out", _recipe({"kind": "quantize"}), log=lambda _: None)
    assert "메모리" in err.value.message and err.value.fix
    assert list(tmp_path.iterdir()) == []


def test_cli_reports_an_unknown_recipe_key(base, tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("stages:\n  - kind: quantize\n    scheem: int4\n", encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "kmed.cli.main", "compress", "--base", str(base), "--out",
                           str(tmp_path / "out"), "--recipe", str(recipe)], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == 2
    assert "scheem" in proc.stderr and "해결 방법" in proc.stderr and "Traceback" not in proc.stderr


def test_a_grounded_qa_drop_past_the_gate_stops_the_pipeline(base, tmp_path, monkeypatch):
    scores = iter([(0.80, "dev"), (0.60, "dev")])  # base, then the quantized stage
    monkeypatch.setattr(pipeline, "qa_score", lambda *_args, **_kw: next(scores))
    with pytest.raises(pipeline.GateFailed) as err:
        pipeline.run(base, tmp_path / "out", _recipe({"kind": "quantize", "scheme": "int8", "gate": {"max_qa_drop": 0.05}}),
                     log=lambda _: None)
    assert "grounded QA 0.800 → 0.600" in err.value.message


def test_qa_is_skipped_with_a_reason_for_a_base_model(base):
    from transformers import AutoTokenizer

    from kmed.llm.compression.evaluate import qa_score

    score, note = qa_score(base, AutoTokenizer.from_pretrained(base))
    assert score is None and "채팅 템플릿" in note


def test_gate_checks_each_limit_against_the_stage_before_or_the_base():
    from kmed.llm.compression.recipe import Gate

    base = {"ppl": 10.0, "bytes_on_disk": 100}
    prev = {"ppl": 10.2, "bytes_on_disk": 100, "qa": 0.8}
    cur = {"ppl": 10.8, "bytes_on_disk": 90, "qa": 0.78, "agreement": {"top1_agreement": 0.88, "kl": 0.02}}
    gate = Gate(max_ppl_ratio=1.1, max_qa_drop=0.05, min_size_ratio_saving=0.2, max_ppl_ratio_vs_base=1.05,
                min_top1_agreement=0.9, max_kl=0.05)
    result = pipeline._gate(gate, prev, cur, base)
    assert len(result["checks"]) == 6 and not result["passed"]
    assert result["failed"] == [
        "perplexity vs base 10.00 → 10.80 (×1.080 > ×1.05)",  # +8 % against the base, only +5.9 % against prev
        "top-1 agreement with the base 0.880 < 0.9",
        "size saving 10.0% < 20%",
    ]
    unmeasured = pipeline._gate(Gate(max_ppl_ratio=None, max_qa_drop=None, min_top1_agreement=0.9), {}, {"ppl": 1.0})
    assert unmeasured == {"passed": True, "checks": [], "failed": []}
