"""``kmed compress``: run a recipe's stages on a base model, re-scoring and gating after each one.

    kmed compress --base models/kb-teacher --out models/kb-small --recipe configs/compress/default.yaml

Every stage's model is saved, reloaded from disk the way a user would load it, and scored on the
reloaded copy: held-out perplexity, grounded QA (when the model can answer), size, decode speed
and peak memory. A stage that regresses past its gate stops the run: the folder is renamed
``<out>.failed`` with the report saying which check failed. Everything is written under
``<out>.partial-<pid>`` and renamed to ``<out>`` only when complete, manifest last.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import platform
import shutil
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import torch

from kmed.errors import KmedError
from kmed.llm.compression import distill as distill_mod
from kmed.llm.compression import prune as prune_mod
from kmed.llm.compression import vocab as vocab_mod
from kmed.llm.compression.arch import check_model_dir
from kmed.llm.compression.ckpt import atomic_output_dir, dir_bytes
from kmed.llm.compression.evaluate import (
    agreement,
    base_reference,
    cap_sentences,
    measure_in_subprocess,
    medical_corpus,
    qa_score,
    split_heldout,
    text_nll,
    timed_greedy,
    token_blocks,
)
from kmed.llm.compression.quantize import (
    load_quantized,
    quantize_bnb,
    quantize_model,
    require_cuda,
    save_quantized,
)
from kmed.llm.compression.recipe import (
    DistillStage,
    PruneStage,
    QuantizeStage,
    Recipe,
    UnstructuredStage,
    VocabStage,
)
from kmed.llm.compression.report import write_report


class GateFailed(KmedError):
    pass


def _check_memory(base: Path, recipe: Recipe) -> None:
    """Refuse early, with numbers, when the stages cannot fit in the free memory."""
    try:
        import psutil  # comes with accelerate/peft
    except ImportError:
        return
    weights = dir_bytes(base)
    fp32 = weights * (2 if _weights_are_half(base) else 1)
    training = any(isinstance(s, DistillStage) or (isinstance(s, PruneStage) and s.lora) for s in recipe.stages)
    need = fp32 * (5 if training else 2.5)  # teacher + student + grads + Adam moments, or model + copy
    free = psutil.virtual_memory().available
    if need > free:
        raise KmedError(
            f"메모리가 부족해요: 이 레시피는 약 {need / 2**30:.1f} GiB가 필요한데 사용 가능한 메모리는 {free / 2**30:.1f} GiB예요.",
            "다른 프로그램을 닫거나, 학습 단계(distill, prune.lora)를 빼거나, 더 작은 모델로 실행하세요.",
        )


def _weights_are_half(base: Path) -> bool:
    try:
        cfg = json.loads((base / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return str(cfg.get("dtype") or cfg.get("torch_dtype") or "").endswith(("float16", "bfloat16"))


def validate(base: str | Path, recipe: Recipe) -> Path:
    """Everything that can be checked before any work: paths, architecture, GPU needs, memory."""
    base = check_model_dir(base)
    for stage in recipe.stages:
        if isinstance(stage, QuantizeStage) and stage.scheme.startswith("bnb_"):
            require_cuda(stage.scheme)
    _check_memory(base, recipe)
    return base


def _is_oom(exc: BaseException) -> bool:
    text = str(exc).lower()
    return isinstance(exc, MemoryError) or "out of memory" in text or "can't allocate memory" in text or "not enough memory" in text


def run(base: str | Path, out: str | Path, recipe: Recipe, overwrite: bool = False,
        log: Callable[[str], None] = print, qa_scorer: Callable[[str, int], tuple] | None = None) -> dict:
    """Run ``recipe`` on ``base``; returns ``{"out", "stages", "status"}``. Raises ``GateFailed``.

    ``qa_scorer(folder, max_items) -> (pass_rate, note)`` scores grounded QA (the CLI passes
    ``kmed.eval.grounded_eval.score_model_folder``); without one, QA is reported as skipped.
    """
    base = validate(base, recipe)
    out = Path(out)
    try:
        with atomic_output_dir(out, overwrite=overwrite) as tmp:
            return _run(base, out, tmp, recipe, log, qa_scorer)
    except GateFailed:
        raise
    except (RuntimeError, MemoryError) as exc:
        if _is_oom(exc):
            raise KmedError(
                f"압축 중에 메모리가 부족했어요 ({type(exc).__name__}). 출력 폴더는 만들지 않았어요.",
                "batch_size/seq_len/calibration_samples 를 줄이거나 다른 프로그램을 닫고 다시 실행하세요.",
            ) from exc
        raise


def _run(base: Path, out: Path, tmp: Path, recipe: Recipe, log, qa_scorer=None) -> dict:
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    torch.manual_seed(recipe.seed)
    started = time.time()
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32).eval()
    ev = recipe.eval
    train_text, heldout_text = split_heldout(medical_corpus(), ev.heldout_every)
    if ev.max_eval_blocks:
        heldout_text = cap_sentences(tokenizer, heldout_text, ev.max_eval_blocks * ev.ppl_seq_len)
    base_nll, base_tokens = text_nll(model, tokenizer, heldout_text, ev.ppl_seq_len)
    agree_blocks = token_blocks(tokenizer, heldout_text, ev.agreement_seq_len)[: ev.agreement_blocks]
    reference = base_reference(model, agree_blocks) if ev.agreement_blocks else None
    meta = {
        "format": "kmed-compressed", "status": "running", "base": str(base), "recipe_name": recipe.name,
        "recipe": recipe.to_dict(), "train_sentences": len(train_text), "heldout_sentences": len(heldout_text),
        "heldout_tokens": base_tokens,
        "heldout_sha1": hashlib.sha1("\n".join(heldout_text).encode("utf-8")).hexdigest(),  # the KB changes: say which text
        "agreement_positions": int(agree_blocks.numel()) if reference else 0,
        "speed_prompt_tokens": ev.speed_prompt_tokens,
        "speed_new_tokens": ev.speed_new_tokens, "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}",
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }
    keep: list[int] | None = None  # the base ids a vocabulary stage kept, in their new order

    def score(name: str, kind: str, path: Path, m, tok, seconds: float, details: dict) -> dict:
        log(f"[{name}] 평가 중…")
        nll, _ = (base_nll, base_tokens) if kind == "base" else text_nll(m, tok, heldout_text, ev.ppl_seq_len)
        # Per base-tokenizer token: the same text and the same divisor at every stage, whatever the vocabulary.
        result = {"name": name, "kind": kind, "path": str(path), "seconds": round(seconds, 2), "details": details,
                  "ppl": math.exp(nll / max(base_tokens, 1)), "bytes_on_disk": dir_bytes(path),
                  "vocab_size": int(m.config.vocab_size),
                  "params": sum(p.numel() for p in m.parameters()) + sum(b.numel() for b in m.buffers() if b is not None)}
        if reference is not None:  # the base agrees with itself: no forward pass needed
            result["agreement"] = (agreement(m, reference, keep) if kind != "base" else
                                   {"kl": 0.0, "top1_agreement": 1.0, "positions": int(reference["blocks"].numel()),
                                    "blocks_skipped": 0, "base_mass_removed": 0.0})
        result["qa"], result["qa_note"] = qa_score(path, tok, ev.qa_max_items, qa_scorer) if ev.qa else (None, "off")
        if ev.memory_subprocess:
            speed = measure_in_subprocess(path, ev.speed_prompt_tokens, ev.speed_new_tokens)
        else:
            ids = torch.randint(3, m.config.vocab_size, (1, ev.speed_prompt_tokens))
            speed = timed_greedy(m, ids, ev.speed_new_tokens)
        for key in ("ttft_s", "decode_tok_s", "prefill_tok_s", "peak_rss_bytes"):
            result[key] = speed.get(key)
        agree = result.get("agreement") or {}
        log(f"[{name}] ppl {result['ppl']:.2f}, {result['bytes_on_disk'] / 2**20:.2f} MiB, "
            f"decode {result['decode_tok_s'] or 0:.1f} tok/s"
            + (f", top-1 {agree['top1_agreement']:.3f}, KL {agree['kl']:.4f}" if agree.get("kl") is not None else ""))
        return result

    results = [score("base", "base", base, model, tokenizer, 0.0, {})]
    stages_dir = tmp / "stages"
    stages_dir.mkdir()
    train_len = max(getattr(s, "seq_len", 0) for s in recipe.stages) or ev.ppl_seq_len
    train_blocks = token_blocks(tokenizer, train_text, train_len)
    for i, stage in enumerate(recipe.stages, start=1):
        name = f"{i:02d}-{stage.kind}"
        path = stages_dir / name
        log(f"[{name}] 시작")
        t0 = time.time()
        if isinstance(stage, VocabStage):
            keep, tokenizer, details = _trim_vocabulary(stage, model, tokenizer, train_text, heldout_text, results[-1]["path"], path)
            train_blocks = token_blocks(tokenizer, train_text, train_len)  # the same text in the new ids
        else:
            model, details = _apply(stage, model, tokenizer, train_blocks, results[-1]["path"], path, recipe.seed)
        seconds = time.time() - t0
        model, tok = _reload(path, tokenizer)  # score what a user would load, not the in-memory object
        result = score(name, stage.kind, path, model, tok, seconds, details)
        result["gate"] = _gate(stage.gate, results[-1], result, results[0])
        results.append(result)
        if not result["gate"]["passed"]:
            failure = f"{name} 단계가 기준을 넘었어요: " + "; ".join(result["gate"]["failed"])
            meta.update(status="failed_gate", failure=failure, seconds=round(time.time() - started, 1))
            _finish(tmp, results, meta)
            failed = out.with_name(out.name + ".failed")
            if failed.exists():
                shutil.rmtree(failed)
            tmp.rename(failed)
            raise GateFailed(failure, f"보고서: {failed / 'report.md'} — 레시피의 gate 값을 조정하거나 단계의 강도를 낮추세요.")
    final = tmp / "model"
    last = Path(results[-1]["path"]) if len(results) > 1 else None
    if last is not None:
        (shutil.copytree if recipe.keep_stage_checkpoints else shutil.move)(last, final)
    if not recipe.keep_stage_checkpoints:
        shutil.rmtree(stages_dir, ignore_errors=True)
    for r in results:  # paths as they will be once the folder has its final name
        r["path"] = r["path"].replace(str(tmp), str(out))
    meta.update(status="complete", seconds=round(time.time() - started, 1), model=str(out / "model"))
    _finish(tmp, results, meta)
    log(f"완료: {out / 'model'} ({results[-1]['bytes_on_disk'] / 2**20:.2f} MiB), 보고서 {out / 'report.md'}")
    return {"out": str(out), "stages": results, "status": "complete"}


def _finish(tmp: Path, results: list[dict], meta: dict) -> None:
    import transformers

    meta["versions"] = {"torch": torch.__version__, "transformers": transformers.__version__}
    write_report(tmp, results, meta)
    (tmp / "manifest.json").write_text(json.dumps({**meta, "stages": [
        {k: r.get(k) for k in ("name", "kind", "path", "ppl", "bytes_on_disk", "gate", "details")} for r in results
    ]}, ensure_ascii=False, indent=2), encoding="utf-8")  # written last: its presence means the run finished


def _reload(path: Path, tokenizer):
    from kmed.llm.compression.quantize import is_quantized_dir

    if is_quantized_dir(path):
        model, tok = load_quantized(path)
        return model, tok or tokenizer
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval(), tokenizer


def _ratio(a, b) -> float | None:
    return a / b if a and b else None


def _gate(gate, prev: dict, cur: dict, base: dict | None = None) -> dict:
    """Every limit the stage's gate sets, against the stage before it or the unmodified base."""
    base, agree = base or {}, cur.get("agreement") or {}
    checks, failed = [], []

    def limit(bound, value, is_max: bool, check: str, failure: str) -> None:
        if bound is None or value is None:
            return  # not set by the recipe, or not measured for this stage
        checks.append(check.format(v=value, b=bound))
        if (value > bound) if is_max else (value < bound):
            failed.append(failure.format(v=value, b=bound))

    ppl, qa_prev, qa_cur = cur.get("ppl"), prev.get("qa"), cur.get("qa")
    limit(gate.max_ppl_ratio_vs_base, _ratio(ppl, base.get("ppl")), True, "ppl vs base ×{v:.3f} ≤ ×{b}",
          f"perplexity vs base {base.get('ppl') or 0:.2f} → {ppl or 0:.2f} (×{{v:.3f}} > ×{{b}})")
    limit(gate.min_top1_agreement, agree.get("top1_agreement"), False, "top-1 vs base {v:.3f} ≥ {b}",
          "top-1 agreement with the base {v:.3f} < {b}")
    limit(gate.max_kl, agree.get("kl"), True, "KL vs base {v:.4f} ≤ {b}", "KL(base ‖ stage) {v:.4f} > {b}")
    limit(gate.max_ppl_ratio, _ratio(ppl, prev.get("ppl")), True, "ppl ×{v:.3f} ≤ ×{b}",
          f"perplexity {prev.get('ppl') or 0:.2f} → {ppl or 0:.2f} (×{{v:.3f}} > ×{{b}})")
    limit(gate.max_qa_drop, qa_prev - qa_cur if qa_prev is not None and qa_cur is not None else None, True,
          "QA drop {v:.3f} ≤ {b}", f"grounded QA {qa_prev or 0:.3f} → {qa_cur or 0:.3f} (−{{v:.3f}} > {{b}})")
    saving = 1 - cur["bytes_on_disk"] / prev["bytes_on_disk"] if prev.get("bytes_on_disk") else None
    limit(gate.min_size_ratio_saving, saving, False, "size saving {v:.3f} ≥ {b}", "size saving {v:.1%} < {b:.0%}")
    return {"passed": not failed, "checks": checks, "failed": failed}


def _trim_vocabulary(stage: VocabStage, model, tokenizer, train_text: list[str], heldout_text: list[str],
                     prev_path: str, path: Path):
    """Choose the kept tokens from training text only, slice the model, save both; (keep, tokenizer, details)."""
    tokenizer_json = Path(prev_path) / "tokenizer.json"
    if not tokenizer_json.is_file():
        raise KmedError(f"{prev_path} 에 tokenizer.json 이 없어서 어휘를 줄일 수 없어요.", "vocab 단계를 레시피의 첫 단계로 두세요.")
    corpus = list(train_text) if "kb" in stage.corpus else []
    if "triage" in stage.corpus:
        corpus += vocab_mod.triage_texts()
    keep, details = vocab_mod.choose_vocabulary(tokenizer, json.loads(tokenizer_json.read_text(encoding="utf-8")),
                                                corpus, stage.keep_first)
    details["heldout_coverage"] = vocab_mod.coverage(tokenizer, keep, heldout_text)
    vocab_mod.trim_model_vocabulary(model, keep)
    model.save_pretrained(path)
    new_tokenizer = vocab_mod.save_trimmed_tokenizer(prev_path, path, keep)
    return keep, new_tokenizer, details


def _apply(stage, model, tokenizer, train_blocks: torch.Tensor, prev_path: str, path: Path, seed: int):
    """Run one stage on ``model``; saves the result to ``path``; returns (model, details)."""
    if isinstance(stage, DistillStage):
        student, details = distill_mod.init_student(model, stage.keep_layers, stage.num_layers, stage.student_config, seed)
        losses = distill_mod.train(student, model, train_blocks[:, : stage.seq_len], stage.steps, stage.loss, stage.kd_weight,
                                   stage.temperature, stage.skew_alpha, stage.lr, stage.batch_size, stage.seed)
        details.update(first_loss=losses[0] if losses else None, last_loss=losses[-1] if losses else None, steps=stage.steps)
        model = student
    elif isinstance(stage, PruneStage):
        calib = train_blocks[: stage.calibration_samples, : stage.seq_len]
        stats = prune_mod.collect_stats(model, calib)
        teacher = copy.deepcopy(model) if stage.lora and stage.lora.kd_from_unpruned else None
        details = prune_mod.prune_structured(model, stats, stage.heads, stage.mlp, stage.layers, stage.importance)
        if stage.lora:
            warnings.filterwarnings("ignore", message=".*gemm_4bit.*")  # bitsandbytes via peft, harmless on CPU
            model, losses = distill_mod.lora_recover(model, teacher, train_blocks[:, : stage.seq_len], stage.lora.steps,
                                                     stage.lora.rank, stage.lora.lr, seed)
            details.update(lora_first_loss=losses[0] if losses else None, lora_last_loss=losses[-1] if losses else None)
        del teacher
    elif isinstance(stage, UnstructuredStage):
        calib = train_blocks[: stage.calibration_samples, : stage.seq_len]
        stats = prune_mod.collect_stats(model, calib) if stage.importance == "activation" else None
        details = prune_mod.prune_unstructured(model, stats, stage.sparsity, stage.importance)
    elif isinstance(stage, QuantizeStage):
        if stage.scheme.startswith("bnb_"):
            quantize_bnb(prev_path, path, stage.scheme)
            return None, {"scheme": stage.scheme}
        quantize_model(model, stage.scheme, stage.group_size, stage.quantize_embeddings)
        save_quantized(model, path, tokenizer, {"stage": stage.kind})
        return model, {"scheme": stage.scheme, "group_size": stage.group_size, **(
            {"skipped": model._kmed_quant["skipped"]} if model._kmed_quant["skipped"] else {})}
    else:  # pragma: no cover - recipe validation rejects other kinds
        raise KmedError(f"unknown stage {stage!r}")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return model, details
