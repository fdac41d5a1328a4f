"""Measure llama.cpp (llama-cpp-python) on a GGUF in a fresh process, the way compression/measure.py
measures a transformers folder: the peer in ``kmed bench llm --peer llama.cpp``.

    echo '[2, 1234, …]' | python -m kmed.llm.llamacpp_measure models/gemma-3-270m/gguf/x.gguf --new-tokens 64

Reads the prompt's token ids (JSON list) from stdin, decodes greedily, prints one JSON line:
``load_s``, ``ttft_s`` (prompt evaluation plus the first token), ``prefill_tok_s``, ``decode_tok_s``,
``peak_rss_bytes``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from kmed.llm.compression.measure import peak_rss_bytes


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("gguf")
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    ids = [int(i) for i in json.loads(sys.stdin.read())]

    started = time.perf_counter()
    import numpy as np
    from llama_cpp import Llama

    start = time.perf_counter()
    import_s = start - started
    llm = Llama(model_path=args.gguf, n_ctx=len(ids) + args.new_tokens + 16, n_threads=args.threads,
                n_threads_batch=args.threads, n_batch=512, verbose=False)
    load_s = time.perf_counter() - start
    n_vocab = llm.n_vocab()

    def next_token() -> int:
        """Greedy: the argmax of the last evaluated position's logits (llama.cpp keeps only those)."""
        return int(np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(n_vocab,)).argmax())

    llm.eval(ids[:8])  # warm-up, as the transformers measurement does
    next_token()
    llm.reset()
    start = time.perf_counter()
    llm.eval(ids)
    token = next_token()
    ttft = time.perf_counter() - start
    first = token
    start = time.perf_counter()
    for _ in range(args.new_tokens - 1):
        llm.eval([token])
        token = next_token()
    decode = time.perf_counter() - start
    steps = args.new_tokens - 1
    result = {"engine": "llama.cpp", "path": args.gguf, "prompt_tokens": len(ids), "new_tokens": args.new_tokens,
              "load_s": load_s, "import_s": import_s, "ttft_s": ttft, "prefill_tok_s": len(ids) / ttft,
              "decode_tok_s": steps / decode if steps and decode > 0 else None, "peak_rss_bytes": peak_rss_bytes(),
              "threads": args.threads, "first_token": first}
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
