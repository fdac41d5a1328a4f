"""``kmed bench llm --model``: a real model and its compressed variants, timed side by side in one run.

    kmed bench llm --model models/gemma-3-270m --variant models/gemma-3-270m-cpu/model --peer llama.cpp --json

Every engine gets the same grounded Korean prompt (KB passages and a question in kmed's template,
cut to ``prompt_tokens`` tokens of the base tokenizer; a variant with a trimmed vocabulary gets
the same text in its own ids). Each measurement is a fresh process, and the engines alternate
(base, variants, peer, then again), so a burst of load elsewhere hits all of them alike. The
report keeps the median of the repeats and every run, with the load average before and after.

``--peer llama.cpp`` runs llama-cpp-python (an optional extra, built from source) on the GGUF the
base folder was converted from (``kmed model fetch`` keeps it under ``gguf/``), with the same
prompt ids and thread count, greedy decoding.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from kmed.errors import KmedError, ModelLoadError

KMED_DECODE = "+kmed-decode"  # a row timed with kmed's Gemma decoder instead of transformers' forward
GOAL = {"size_ratio_vs_fp16": 0.5, "decode_speedup_vs_fp32": 2.0, "peak_memory_ratio_vs_fp32": 0.3}


def _tokenizer(path: Path):
    from transformers import AutoTokenizer

    if not (path / "tokenizer.json").is_file() and not (path / "tokenizer_config.json").is_file():
        raise ModelLoadError(f"{path} 에 토크나이저가 없어요.", "kmed model fetch 나 kmed compress 로 만든 폴더를 주세요.")
    return AutoTokenizer.from_pretrained(path)


def gguf_of(base: Path) -> Path | None:
    found = sorted((base / "gguf").glob("*.gguf")) if (base / "gguf").is_dir() else []
    return found[0] if found else None


def measure_llamacpp(gguf: Path, prompt_ids: list[int], new_tokens: int, threads: int, timeout_s: float = 900) -> dict:
    """llama.cpp in a fresh process: load, TTFT of the prompt, greedy decode, peak RSS."""
    cmd = [sys.executable, "-m", "kmed.llm.llamacpp_measure", str(gguf), "--new-tokens", str(new_tokens),
           "--threads", str(threads)]
    try:
        proc = subprocess.run(cmd, input=json.dumps(prompt_ids), capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired as exc:
        raise KmedError(f"llama.cpp 측정이 {timeout_s:.0f}초 안에 끝나지 않았어요.", "--new-tokens 를 줄이세요.") from exc
    if proc.returncode != 0:
        tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-2:])
        if "llama_cpp" in tail and "No module" in tail:
            raise KmedError("llama.cpp 비교에는 llama-cpp-python 이 필요해요.",
                            "pip install 'kmed[llamacpp]' (소스에서 빌드, 2코어에서 5~10분) 후 다시 실행하세요.")
        raise KmedError(f"llama.cpp 측정이 실패했어요: {tail}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_model_bench(base: str | Path, variants: list[str | Path] = (), prompt_tokens: int = 512, new_tokens: int = 64,
                    repeats: int = 2, peer: str | None = None, threads: int | None = None, log=print,
                    kmed_decoder: bool = True) -> dict:
    """``kmed_decoder``: also time each Gemma 3 variant with kmed's decoder (``kmed.llm.gemma_decode``), the
    one ``kmed ask --model`` uses, as a row ``<variant>+kmed-decode``; the fp32 reference stays transformers'."""
    from kmed.llm.compression.ckpt import dir_bytes
    from kmed.llm.compression.evaluate import measure_in_subprocess
    from kmed.llm.gemma_native import is_gemma3
    from kmed.llm.models import measure_memory_bandwidth

    base = Path(base)
    paths = {"fp32": base}
    for v in variants:
        v = Path(v)
        if (v / "model").is_dir() and not (v / "config.json").is_file():
            v = v / "model"  # a `kmed compress --out` folder: its final model
        if not (v / "config.json").is_file():
            raise ModelLoadError(f"변형 폴더에 config.json 이 없어요: {v}", "kmed compress 의 --out 폴더(또는 그 안의 model/)를 주세요.")
        name = v.parent.name if v.name == "model" else v.name
        paths[name] = v
        if kmed_decoder and is_gemma3(v):
            paths[name + KMED_DECODE] = v
    if peer not in (None, "llama.cpp"):
        raise KmedError(f"알 수 없는 비교 대상이에요: {peer!r}", "--peer llama.cpp 만 지원해요.")
    gguf = gguf_of(base) if peer else None
    if peer and gguf is None:
        raise KmedError(f"{base}/gguf/ 에 GGUF 파일이 없어요.", "kmed model fetch 로 받은 폴더를 --model 로 주세요.")
    threads = threads or min(os.cpu_count() or 1, 8)
    from kmed.llm.bench import grounded_prompt

    base_tok = _tokenizer(base)
    text = base_tok.decode(grounded_prompt(base_tok, prompt_tokens)[0])  # the same text for every tokenizer
    prompt_ids = {name: _tokenizer(p)(text, add_special_tokens=False)["input_ids"] for name, p in paths.items()}
    extra = {name: ["--decoder", "kmed"] if name.endswith(KMED_DECODE) else [] for name in paths}
    started, load_before = time.time(), list(os.getloadavg())
    bandwidth = [measure_memory_bandwidth(size_mb=1024) for _ in range(3)]
    runs: dict[str, list[dict]] = {name: [] for name in [*paths, *(["llama.cpp"] if peer else [])]}
    for r in range(max(1, repeats)):
        for name, path in paths.items():
            log(f"[{name}] run {r + 1}/{repeats}…")
            runs[name].append(measure_in_subprocess(path, len(prompt_ids[name]), new_tokens, prompt_ids=prompt_ids[name],
                                                    threads=threads, timeout_s=1800, extra_args=extra[name]))
        if peer:
            log(f"[llama.cpp] run {r + 1}/{repeats}…")
            runs["llama.cpp"].append(measure_llamacpp(gguf, prompt_ids["fp32"], new_tokens, threads))
    bandwidth += [measure_memory_bandwidth(size_mb=1024) for _ in range(3)]
    bw = statistics.median(bandwidth)
    fp16_bytes = _param_count(base) * 2
    rows = {}
    for name, samples in runs.items():
        path = gguf if name == "llama.cpp" else paths[name]
        size = path.stat().st_size if name == "llama.cpp" else dir_bytes(path)
        rows[name] = _summarise(samples, size, fp16_bytes, bw)
        rows[name]["prompt_tokens"] = len(prompt_ids.get(name, prompt_ids["fp32"]))
        rows[name]["path"] = str(path)
    ref = rows["fp32"]
    for row in rows.values():
        row["size_ratio_vs_fp16"] = row["bytes_on_disk"] / fp16_bytes
        row["decode_speedup_vs_fp32"] = row["decode_tok_s"] / ref["decode_tok_s"]
        row["peak_memory_ratio_vs_fp32"] = row["peak_rss_bytes"] / ref["peak_rss_bytes"]
        row["goal_met"] = all(row[k] <= v if k != "decode_speedup_vs_fp32" else row[k] >= v for k, v in GOAL.items())
    peer_row = rows.pop("llama.cpp", None)
    return {
        "model": str(base), "prompt_tokens": prompt_tokens, "new_tokens": new_tokens, "repeats": repeats, "threads": threads,
        "nproc": os.cpu_count(), "load_average_before": load_before, "load_average_after": list(os.getloadavg()),
        "memory_bandwidth_bytes_s": bw, "memory_bandwidth_samples": bandwidth, "fp16_bytes": fp16_bytes, "goal": GOAL,
        "variants": rows, "peer": peer_row, "weights": "real", "seconds": round(time.time() - started, 1),
        "statistic": "median of the repeats (every run listed under runs)",
    }


def _param_count(path: Path) -> int:
    from kmed.llm.compression.ckpt import read_safetensors_header

    total = 0
    for f in path.glob("*.safetensors"):
        for name, meta in read_safetensors_header(f).items():
            if name != "__metadata__":
                n = 1
                for d in meta["shape"]:
                    n *= d
                total += n
    return total


def _summarise(samples: list[dict], size: int, fp16_bytes: int, bandwidth: float) -> dict:
    def med(key):
        values = [s[key] for s in samples if s.get(key) is not None]
        return statistics.median(values) if values else None

    decode = med("decode_tok_s")
    speeds = [s["decode_tok_s"] for s in samples if s.get("decode_tok_s")]  # none when one token was asked for
    row = {"bytes_on_disk": size, "load_s": med("load_s"), "import_s": med("import_s"), "ttft_s": med("ttft_s"), "prefill_tok_s": med("prefill_tok_s"),
           "decode_tok_s": decode, "peak_rss_bytes": med("peak_rss_bytes"),
           "decode_tok_s_spread": [min(speeds), max(speeds)] if speeds else None,
           "runs": [{k: s.get(k) for k in ("load_s", "import_s", "ttft_s", "decode_tok_s", "peak_rss_bytes", "decoder")}
                    for s in samples]}
    # The ceiling: every weight byte read once per token (the input embedding is a lookup, and the
    # embedding of a tied model is read once by the head), at the machine's measured read bandwidth.
    row["ceiling_decode_tok_s"] = bandwidth / max(size, 1)
    row["ceiling_fraction"] = (decode or 0) / row["ceiling_decode_tok_s"]
    return row


def markdown(result: dict) -> str:
    lines = ["| engine | on disk MiB | × fp16 | load s (+ library import) | TTFT s | prefill tok/s | decode tok/s (min–max) | × fp32 | "
             "peak RSS MiB | × fp32 | of ceiling |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    rows = dict(result["variants"])
    if result.get("peer"):
        rows["llama.cpp (Q4_K_M)"] = result["peer"]
    for name, r in rows.items():
        lo, hi = r["decode_tok_s_spread"] or (0.0, 0.0)
        lines.append(f"| {name} | {r['bytes_on_disk'] / 2**20:.0f} | {r['size_ratio_vs_fp16']:.2f} | {r['load_s'] or 0:.1f} "
                     f"(+{r.get('import_s') or 0:.1f}) | "
                     f"{r['ttft_s']:.2f} | {r['prefill_tok_s']:.0f} | {r['decode_tok_s']:.1f} ({lo:.1f}–{hi:.1f}) | "
                     f"{r['decode_speedup_vs_fp32']:.2f} | {r['peak_rss_bytes'] / 2**20:.0f} | "
                     f"{r['peak_memory_ratio_vs_fp32']:.2f} | {r['ceiling_fraction']:.0%} |")
    return "\n".join(lines)
