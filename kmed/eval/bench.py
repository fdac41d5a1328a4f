"""``kmed bench retrieval`` and ``kmed bench agent``: latency, build time and memory, measured here.

Every figure comes from this run on this machine; the report records the machine (cores, load
average) and the date so numbers are never quoted without their context.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kmed.eval.stats import p50_p95


def machine() -> dict:
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "cpu_count": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(), "loadavg_at_start": [round(x, 2) for x in load] if load else None}


def percentiles(values: list[float]) -> dict:
    return {**p50_p95(values, 3, "_ms"), "n": len(values)}


def bench_retrieval(queries: list[str], scales: list[int], rebuild: bool = True) -> dict:
    from kmed import Assistant
    from kmed.data.kb import load_kb_or_fail
    from kmed.retrieval.config import RetrievalConfig
    from kmed.retrieval.index import build_index

    report = {"machine": machine()}
    if rebuild:
        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            manifest = build_index(load_kb_or_fail(), Path(tmp) / "default", RetrievalConfig.load())
            report["build"] = {"seconds": round(time.perf_counter() - started, 2), "passages": manifest["counts"]["passages"],
                               "dense": manifest.get("dense")}
    Assistant.load()  # builds the default index first if it is missing or stale, so the next load is a pure load
    started = time.perf_counter()
    assistant = Assistant.load(auto_build=False)
    report["load_seconds"] = round(time.perf_counter() - started, 2)
    retriever = assistant.retriever
    for query in queries[:5]:  # warm caches once; the goal is latency after load
        retriever.search(query, k=5)
    for name, modes in (("hybrid", ("bm25", "dense", "kg")), ("bm25", ("bm25",)), ("dense", ("dense",)), ("kg", ("kg",))):
        times = []
        for query in queries:
            t = time.perf_counter()
            retriever.search(query, k=5, modes=modes)
            times.append((time.perf_counter() - t) * 1000)
        report[f"query_{name}"] = percentiles(times)
    report["synthetic"] = []
    for n in scales:
        kinds = ["flat", "hnsw", "bm25"] if n <= 200_000 else ["ivfpq", "bm25"]
        for kind in kinds:
            report["synthetic"].append(_run_scale(n, kind))
    return report


def _run_scale(n: int, kind: str) -> dict:
    command = [sys.executable, "-m", "kmed.eval.bench_scale", "--n", str(n), "--index", kind]
    done = subprocess.run(command, capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        return {"n": n, "index": kind, "error": done.stderr.strip().splitlines()[-1:] or "failed"}
    return json.loads(done.stdout.strip().splitlines()[-1])


FIRST_TURN_MESSAGE = "타이레놀 먹는 중인데 술 한잔 해도 돼요?"


def bench_agent(turns: list[list[str]], model: str | None = None, load_runs: int = 3,
                max_generated: int | None = None) -> dict:
    """Load time in a fresh process (built indexes, and the model when given) and that process's first
    turn (``first_turn_seconds``), then per turn in this one.

    Every turn is streamed: ``turn`` is its whole time; with a model, ``ttft_s`` is the time to the
    first streamed text and ``answer_s`` the time to the complete reply (p50, p95), over the turns
    that reached the generator (a refusal or an emergency reply never does); ``max_generated``
    stops after that many of them. ``answer_tokens`` is how many tokens each answer generated, and
    ``answer_120_s`` each answer's time scaled to 120 generated tokens (first token, then its own
    decoding rate), the length the response-time goal names.
    """
    # Each fresh process prints its load time, then its first turn's: lazy work (a Kiwi built on first
    # use, a first matrix multiply) shows in the second number, not hidden behind the first. The first
    # message is an ordinary drug question that reaches the generator (an emergency
    # reply would never reach a model).
    code = ("import time; t=time.perf_counter(); from kmed import Assistant; from kmed.llm.factory import load_generator; "
            f"a=Assistant.load(auto_build=False, generator=load_generator({model!r})); print(time.perf_counter()-t); "
            f"t=time.perf_counter(); a.ask({FIRST_TURN_MESSAGE!r}); print(time.perf_counter()-t)")
    loads, first_turns = [], []
    for _ in range(load_runs):
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
        if done.returncode == 0:
            load_s, first_s = (float(x) for x in done.stdout.strip().splitlines()[-2:])
            loads.append(load_s)
            first_turns.append(first_s)
    from kmed import Assistant
    from kmed.llm.factory import load_generator

    assistant = Assistant.load(generator=load_generator(model))
    times, ttft, answer, tokens, answer_120 = [], [], [], [], []
    for conversation in turns:
        if max_generated is not None and len(ttft) >= max_generated:
            break
        session = assistant.session()
        for message in conversation:
            t = time.perf_counter()
            first = None
            for event, value in session.stream(message):
                if event == "token" and value and first is None:
                    first = time.perf_counter() - t
            total = time.perf_counter() - t
            times.append(total * 1000)
            if first is not None:
                ttft.append(first)
                answer.append(total)
                result = getattr(assistant.generator, "last_result", None)
                new_tokens = getattr(result, "new_tokens", 0) or 0
                if new_tokens > 1:
                    tokens.append(new_tokens)
                    answer_120.append(first + (total - first) * (120 - 1) / (new_tokens - 1))
    report = {"machine": machine(), "model": model or "extractive",
              "load_seconds": {"runs": [round(x, 2) for x in loads], "median": round(statistics.median(loads), 2) if loads else None},
              "first_turn_seconds": {"runs": [round(x, 3) for x in first_turns],
                                     "median": round(statistics.median(first_turns), 3) if first_turns else None},
              "turn": percentiles(times)}
    if model:
        report["ttft_s"] = seconds_summary(ttft)
        report["answer_s"] = seconds_summary(answer)
        if tokens:
            report["answer_tokens"] = {**p50_p95(tokens, 0), "n": len(tokens)}
            report["answer_120_s"] = seconds_summary(answer_120)
    return report


def seconds_summary(values: list[float]) -> dict:
    """Median and nearest-rank 95th percentile of timings in seconds (with few values, p95 is the largest)."""
    return {**p50_p95(values, 3), "n": len(values)}
