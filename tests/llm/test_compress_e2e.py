"""Golden runs, behind ``-m slow``: train a real (small) teacher on KB text, then run ``kmed compress``.

    .venv/bin/python -m pytest -m slow tests/test_compress_e2e.py

The gates only mean something on a trained model: a random one is equally bad before and after.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kmed.llm.compression import pipeline
from kmed.llm.compression.recipe import recipe_from_dict

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    from kmed.llm.compression.teacher import train_teacher

    out = tmp_path_factory.mktemp("teacher") / "kb-teacher"
    info = train_teacher(out, max_steps=300, log=lambda _: None)
    return out, info


def test_teacher_learns_the_kb(teacher):
    _, info = teacher
    assert info["heldout_ppl"] < 0.25 * info["vocab_size"]  # far better than uniform over the vocabulary
    assert info["steps"] == 300


def test_kmed_compress_cli_end_to_end(teacher, tmp_path):
    base, info = teacher
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "name: e2e\n"
        "eval: {speed_new_tokens: 4, speed_prompt_tokens: 16}\n"
        "stages:\n"
        "  - {kind: distill, num_layers: 2, steps: 60, gate: {max_ppl_ratio: 2.5}}\n"
        "  - {kind: prune, mlp: 0.25, lora: {steps: 20}, gate: {max_ppl_ratio: 1.5}}\n"
        "  - {kind: quantize, scheme: int4, gate: {max_ppl_ratio: 1.15}}\n",
        encoding="utf-8",
    )
    out = tmp_path / "small"
    proc = subprocess.run([sys.executable, "-m", "kmed.cli.main", "compress", "--base", str(base), "--out", str(out),
                           "--recipe", str(recipe), "--json"], capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    stages = {s["name"]: s for s in result["stages"]}
    assert list(stages) == ["base", "01-distill", "02-prune", "03-quantize"]
    assert stages["base"]["ppl"] == pytest.approx(info["heldout_ppl"], rel=1e-3)  # the same held-out text
    assert stages["03-quantize"]["bytes_on_disk"] < 0.2 * stages["base"]["bytes_on_disk"]
    assert all(s["peak_rss_bytes"] and s["decode_tok_s"] for s in stages.values())
    assert (out / "manifest.json").is_file() and (out / "model" / "kmed_quantization.json").is_file()


def test_perplexity_gate_stops_a_harsh_prune(teacher, tmp_path):
    base, _ = teacher
    recipe = recipe_from_dict({"eval": {"memory_subprocess": False, "speed_new_tokens": 2, "speed_prompt_tokens": 8},
                               "stages": [{"kind": "prune", "mlp": 0.9, "heads": 0.5, "gate": {"max_ppl_ratio": 1.2}},
                                          {"kind": "quantize"}]})
    with pytest.raises(pipeline.GateFailed) as err:
        pipeline.run(base, tmp_path / "out", recipe, log=lambda _: None)
    assert "perplexity" in err.value.message
    assert not (tmp_path / "out").exists() and (tmp_path / "out.failed" / "report.md").is_file()
