"""Measure one checkpoint in a fresh process: load it the way a user would, then time a greedy run.

    python -m kmed.llm.compression.measure models/kb-int4 --prompt-tokens 512 --new-tokens 32

Prints one JSON line: ``load_s``, ``rss_after_load_bytes``, ``peak_rss_bytes`` (VmHWM of this
process: load plus generation), ``ttft_s``, ``prefill_tok_s``, ``decode_tok_s``, ``ttft_at``. Running in its own
process is what makes the peak honest: nothing another variant allocated is counted.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time


def _status_bytes(field: str) -> int:
    """``VmRSS`` or ``VmHWM`` (peak) from /proc/self/status, in bytes; 0 where there is no procfs."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def peak_rss_bytes() -> int:
    """This process's peak RSS since exec.

    ``VmHWM`` belongs to the process's own address space, which exec replaces. ``ru_maxrss`` is
    kept across exec, so a child spawned by a big parent would report the parent's size; it is
    only the fallback where procfs is missing.
    """
    return _status_bytes("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def timed_kmed_greedy(decoder, prompt_ids: list[int], new_tokens: int) -> dict:
    """``evaluate.timed_greedy``'s keys for kmed's Gemma decoder, from an empty cache (no reused prompt)."""
    decoder.reset(len(prompt_ids) + new_tokens)
    start = time.perf_counter()
    token = int(decoder.prefill(prompt_ids).argmax())
    ttft = time.perf_counter() - start
    steps = max(new_tokens - 1, 0)
    start = time.perf_counter()
    for _ in range(steps):
        token = int(decoder.step(token).argmax())
    decode = time.perf_counter() - start
    return {"prompt_tokens": len(prompt_ids), "new_tokens": new_tokens, "ttft_s": ttft,
            "prefill_tok_s": len(prompt_ids) / ttft, "decode_tok_s": steps / decode if steps and decode > 0 else None}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path")
    parser.add_argument("--prompt-tokens", type=int, default=64)
    parser.add_argument("--new-tokens", type=int, default=8)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--attn", default=None, choices=["eager", "sdpa"],
                        help="attention kernel (default: the fastest decoder for the shape, arch.decode_attention)")
    parser.add_argument("--dynamic-cache", action="store_true", help="grow the KV cache by concatenation (HF default)")
    parser.add_argument("--decoder", default="transformers", choices=["transformers", "kmed"],
                        help="kmed: kmed.llm.gemma_decode (Gemma 3 only), as kmed ask --model decodes")
    parser.add_argument("--ttft-at", default="", help="also time prefill alone at these prompt lengths (comma-separated)")
    parser.add_argument("--prompt-ids-stdin", action="store_true", help="read the prompt's token ids (JSON list) from stdin")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from kmed.llm.compression.evaluate import load_any, timed_greedy

    start = time.perf_counter()
    import_s = start - started  # the engine's library (torch; transformers is imported by the load itself)
    model = None
    if args.decoder == "kmed":  # as kmed ask --model loads it: without transformers' model classes when it can
        from kmed.llm.gemma_native import load_native

        model, _ = load_native(args.path)
    if model is None:
        model, _ = load_any(args.path)
    load_s = time.perf_counter() - start
    from kmed.llm.compression.arch import decode_attention

    args.attn = args.attn or decode_attention(model.config)
    if hasattr(model, "set_attn_implementation"):
        model.set_attn_implementation(args.attn)
    rss_loaded = _status_bytes("VmRSS")
    vocab = model.config.vocab_size
    if args.prompt_ids_stdin:
        ids = [int(i) % vocab for i in json.loads(sys.stdin.read())]
    else:
        gen = torch.Generator().manual_seed(0)
        ids = torch.randint(3, vocab, (args.prompt_tokens,), generator=gen).tolist()
    input_ids = torch.tensor([ids], dtype=torch.long)
    decoder = None
    if args.decoder == "kmed":
        from kmed.llm.gemma_decode import GemmaDecoder

        decoder = GemmaDecoder.for_model(model)
        if decoder is None:
            raise SystemExit(f"--decoder kmed: {GemmaDecoder.unsupported_reason(model)}")

    def timed(ids: torch.Tensor, new_tokens: int) -> dict:
        if decoder is not None:
            return timed_kmed_greedy(decoder, ids[0].tolist(), new_tokens)
        return timed_greedy(model, ids, new_tokens=new_tokens, static_cache=not args.dynamic_cache)

    timed(input_ids[:, :8], new_tokens=3)  # warm-up: kernels, allocator, threads
    result = timed(input_ids, new_tokens=args.new_tokens)
    ttft_at = {}
    for n in [int(x) for x in args.ttft_at.split(",") if x.strip()]:
        if n < input_ids.shape[1]:
            ttft_at[str(n)] = timed(input_ids[:, :n], new_tokens=1)["ttft_s"]
    result.update(
        ttft_at=ttft_at,
        path=str(args.path),
        load_s=load_s,
        import_s=import_s,
        rss_after_load_bytes=rss_loaded,
        peak_rss_bytes=peak_rss_bytes(),
        ru_maxrss_bytes=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        threads=torch.get_num_threads(),
        attn=args.attn,
        kv_cache="dynamic" if args.dynamic_cache else "static",
        decoder=args.decoder,
        dtype=str(next(iter(model.buffers()), next(model.parameters())).dtype),
    )
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
