"""Re-scoring after every compression stage: perplexity, grounded QA, size, speed and peak memory.

    sentences = medical_corpus();  train, heldout = split_heldout(sentences)
    perplexity(model, token_blocks(tokenizer, heldout, 128))
    timed_greedy(model, input_ids, new_tokens=16)      # {"ttft_s", "prefill_tok_s", "decode_tok_s"}
    measure_in_subprocess("models/kb-int4")            # peak RSS of a fresh process loading it

The held-out split is by sentence hash, so the teacher trainer and every stage agree on which
sentences were never trained on, whatever order the KB lists them in.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys
import time
from functools import lru_cache
from pathlib import Path

import torch

from kmed.errors import KmedError


@lru_cache(maxsize=2)
def _corpus(kb_dir: str | None) -> tuple[str, ...]:
    from kmed.data.kb import load_kb
    from kmed.llm.tiny import FALLBACK_TEXTS
    from kmed.text_ko import split_sentences

    kb, _ = load_kb(kb_dir)  # whatever validates: the KB is edited while people work
    sentences = []
    for entry in [*kb.conditions.values(), *kb.drugs.values()]:  # the sections, as kmed.llm.tiny.kb_texts
        for text in entry.sections.values():
            sentences.extend(split_sentences(text or ""))
    for entry in [*kb.symptoms.values(), *kb.tests.values(), *kb.departments.values()]:
        sentences.extend(split_sentences(getattr(entry, "description", None) or ""))
    seen: set[str] = set()
    unique = [s for s in sentences if not (s in seen or seen.add(s))]
    return tuple(unique or FALLBACK_TEXTS)


def medical_corpus(kb_dir: str | Path | None = None) -> list[str]:
    """KB sentences: condition and drug sections plus every symptom, test and department description."""
    return list(_corpus(str(kb_dir) if kb_dir else None))


def split_heldout(sentences: list[str], every: int = 10) -> tuple[list[str], list[str]]:
    """(train, heldout): a sentence is held out when its sha1 falls in bucket 0 of ``every``."""
    train, heldout = [], []
    for s in sentences:
        bucket = int(hashlib.sha1(s.encode("utf-8")).hexdigest()[:8], 16) % every
        (heldout if bucket == 0 else train).append(s)
    if not heldout:  # a tiny corpus: hold out the last sentence rather than nothing
        heldout, train = train[-1:], train[:-1]
    return train, heldout


def document_bos(tokenizer) -> int | None:
    """The BOS id when the tokenizer starts every text with one (Gemma, LLaMA); None for kmed's tiny ones."""
    bos = getattr(tokenizer, "bos_token_id", None)
    if bos is None:
        return None
    ids = tokenizer("가", add_special_tokens=True)["input_ids"]
    return bos if ids and ids[0] == bos else None


def token_blocks(tokenizer, sentences: list[str], seq_len: int, with_mask: bool = False):
    """The text tokenized once and cut into ``[n, seq_len]`` blocks (the tail padded out).

    A pretrained model whose tokenizer starts every text with BOS (Gemma) reads the sentences as
    one document, a line each, and every block starts with BOS: without it such a model is far
    off its training distribution. kmed's tiny tokenizers have no BOS, and their models were
    trained on sentences joined with EOS, so that is what they get. ``with_mask`` also returns
    which positions hold text rather than padding.
    """
    bos = document_bos(tokenizer)
    if bos is None:
        eos = tokenizer.eos_token or ""
        ids = tokenizer(eos.join(sentences) + eos, add_special_tokens=False)["input_ids"]
        width = seq_len
    else:
        ids = tokenizer("\n".join(sentences), add_special_tokens=False)["input_ids"]
        width = seq_len - 1
    n = max(1, math.ceil(len(ids) / width))
    pad = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0
    real = torch.arange(n * width) < len(ids)
    blocks = torch.tensor(ids + [pad] * (n * width - len(ids)), dtype=torch.long).view(n, width)
    mask = real.view(n, width)
    if bos is not None:
        blocks = torch.cat([torch.full((n, 1), bos, dtype=torch.long), blocks], dim=1)
        mask = torch.cat([torch.ones((n, 1), dtype=torch.bool), mask], dim=1)
    return (blocks, mask) if with_mask else blocks


@torch.no_grad()
def perplexity(model, blocks: torch.Tensor, batch_size: int = 32) -> float:
    """exp(mean next-token NLL) over every position of every block."""
    model.eval()
    total, count = 0.0, 0
    for i in range(0, len(blocks), batch_size):
        batch = blocks[i : i + batch_size]
        logits = model(input_ids=batch).logits[:, :-1].float()
        nll = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1), reduction="sum")
        total += float(nll)
        count += batch[:, 1:].numel()
    return math.exp(total / max(count, 1))


@torch.no_grad()
def timed_greedy(model, input_ids: torch.Tensor, new_tokens: int, static_cache: bool = True) -> dict:
    """Greedy decoding with the KV cache, timed the way a user feels it.

    ``ttft_s``: prefill of the whole prompt plus the first token. ``decode_tok_s``: the following
    tokens, one forward pass each. Only the last position's logits are computed during prefill.
    A static (preallocated) cache avoids re-concatenating every layer's keys and values at each
    step, which costs ~13 ms/token at the 1.3B shape with a 512-token context.
    """
    model.eval()
    cache = None
    if static_cache:
        from transformers import StaticCache

        cache = StaticCache(config=model.config, max_cache_len=input_ids.shape[1] + new_tokens)
    start = time.perf_counter()
    out = model(input_ids=input_ids, use_cache=True, logits_to_keep=1, past_key_values=cache)
    token = out.logits[:, -1].argmax(-1, keepdim=True)
    ttft = time.perf_counter() - start
    cache = out.past_key_values
    steps = max(new_tokens - 1, 0)
    start = time.perf_counter()
    for _ in range(steps):
        out = model(input_ids=token, past_key_values=cache, use_cache=True)
        cache = out.past_key_values
        token = out.logits[:, -1].argmax(-1, keepdim=True)
    decode = time.perf_counter() - start
    return {
        "prompt_tokens": int(input_ids.shape[1]),
        "new_tokens": int(new_tokens),
        "ttft_s": ttft,
        "prefill_tok_s": input_ids.shape[1] / ttft,
        "decode_tok_s": steps / decode if steps and decode > 0 else None,
    }


def load_any(path: str | Path):
    """(model, tokenizer or None) for a plain HF folder or a ``kmed compress`` quantized one."""
    from kmed.llm.compression.quantize import is_quantized_dir, load_quantized

    path = Path(path)
    if is_quantized_dir(path):
        return load_quantized(path)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(path) if (path / "tokenizer_config.json").is_file() else None
    return model, tokenizer


def measure_in_subprocess(path: str | Path, prompt_tokens: int = 64, new_tokens: int = 8, timeout_s: float = 900,
                          prompt_ids: list[int] | None = None, threads: int | None = None,
                          extra_args: list[str] | None = None) -> dict:
    """Load ``path`` in a fresh Python and time one greedy run; returns its JSON with ``peak_rss_bytes``."""
    cmd = [sys.executable, "-m", "kmed.llm.compression.measure", str(path),
           "--prompt-tokens", str(prompt_tokens), "--new-tokens", str(new_tokens)]
    if threads:
        cmd += ["--threads", str(threads)]
    cmd += extra_args or []
    env = dict(os.environ, PYTHONWARNINGS="ignore", TOKENIZERS_PARALLELISM="false")
    stdin = json.dumps(prompt_ids) if prompt_ids is not None else ""
    if prompt_ids is not None:
        cmd += ["--prompt-ids-stdin"]
    try:
        proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=timeout_s, env=env)
    except subprocess.TimeoutExpired as exc:
        raise KmedError(f"측정 프로세스가 {timeout_s:.0f}초 안에 끝나지 않았어요: {path}", "--new-tokens 나 --layers 를 줄이세요.") from exc
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        if proc.returncode in (-9, 137) or "out of memory" in proc.stderr.lower() or "can't allocate" in proc.stderr:
            raise KmedError(f"{path} 를 불러오다 메모리가 부족했어요.", "다른 프로그램을 닫거나 더 작은 모델/--layers 로 다시 실행하세요.")
        raise KmedError(f"측정 프로세스가 실패했어요 ({path}): {' | '.join(tail)}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def qa_score(path: str | Path, tokenizer, max_items: int = 20, scorer=None) -> tuple[float | None, str]:
    """Grounded QA pass rate on the dev set, when the model can answer and a scorer is given.

    A base LM without a chat template cannot follow the grounded prompt, so it is skipped with the
    reason rather than scored as 0. The scorer (``kmed.eval.grounded_eval.score_model_folder``,
    passed in by ``kmed compress``: it needs the whole assistant, floors above this one) serves the
    stage's folder and judges the first ``max_items`` dev cases.
    """
    if tokenizer is None or not getattr(tokenizer, "chat_template", None):
        return None, "건너뜀: 채팅 템플릿이 없는 기본 언어 모델이라 질문에 답하지 못해요 (SFT 후 측정)"
    if scorer is None:
        return None, "건너뜀: grounded QA 채점기가 주어지지 않았어요 (kmed compress 가 넘겨줘요)"
    return scorer(str(path), max_items)


# ---- comparable across tokenizers: NLL of a fixed text, and agreement with the base model --------


def cap_sentences(tokenizer, sentences: list[str], max_tokens: int | None) -> list[str]:
    """The leading sentences whose tokens (by ``tokenizer``) fit in ``max_tokens`` (None: all)."""
    if not max_tokens:
        return list(sentences)
    kept, total = [], 0
    for sentence, ids in zip(sentences, tokenizer(list(sentences), add_special_tokens=False)["input_ids"], strict=True):
        if kept and total + len(ids) + 1 > max_tokens:
            break
        kept.append(sentence)
        total += len(ids) + 1
    return kept


@torch.no_grad()
def text_nll(model, tokenizer, sentences: list[str], seq_len: int, batch_size: int = 16) -> tuple[float, int]:
    """(summed next-token NLL in nats, tokens predicted) over the text; padding is never scored.

    Divided by the *base* tokenizer's count, the sum gives a perplexity that stays comparable when
    a stage changes the tokenizer (vocabulary trimming re-splits the rare pieces it removed).
    """
    blocks, mask = token_blocks(tokenizer, sentences, seq_len, with_mask=True)
    vocab = int(getattr(model.config, "vocab_size", 0) or 1)
    batch_size = max(1, min(batch_size, (1 << 27) // (blocks.shape[1] * vocab)))  # ≤ 512 MiB of fp32 logits
    model.eval()
    total, count = 0.0, 0
    for i in range(0, len(blocks), batch_size):
        batch, keep = blocks[i : i + batch_size], mask[i : i + batch_size, 1:]
        logits = model(input_ids=batch).logits[:, :-1].float()
        nll = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1), reduction="none")
        total += float(nll[keep.reshape(-1)].sum())
        count += int(keep.sum())
    return total, count


@torch.no_grad()
def base_reference(model, blocks: torch.Tensor) -> dict:
    """The base model's next-token log-probabilities on ``blocks`` (fp16), kept to score later stages."""
    model.eval()
    logprobs = torch.cat([torch.log_softmax(model(input_ids=blocks[i : i + 4]).logits.float(), -1).half()
                          for i in range(0, len(blocks), 4)])
    return {"blocks": blocks, "logprobs": logprobs}


@torch.no_grad()
def agreement(model, reference: dict, keep: list[int] | None = None) -> dict:
    """Mean KL(base ‖ stage) of next-token distributions and top-1 agreement with the base.

    ``keep`` (old ids, sorted) is the vocabulary a trimming stage kept: blocks holding a removed
    token are skipped (counted), the base distribution is renormalised over the kept tokens for
    the KL (the mass it put elsewhere is reported as ``base_mass_removed``), and top-1 agreement
    compares with the base's argmax over the *full* vocabulary, so a removed favourite counts
    as a disagreement.
    """
    blocks, base_lp = reference["blocks"], reference["logprobs"]
    if keep is not None:
        index = torch.tensor(keep, dtype=torch.long)
        new_id = torch.full((base_lp.shape[-1],), -1, dtype=torch.long)
        new_id[index] = torch.arange(len(keep))
        usable = (new_id[blocks] >= 0).all(dim=1)
    else:
        usable = torch.ones(len(blocks), dtype=torch.bool)
    if not usable.any():
        return {"kl": None, "top1_agreement": None, "positions": 0, "blocks_skipped": int(len(blocks))}
    kl_sum, agree, positions, removed = 0.0, 0, 0, 0.0
    model.eval()
    for b in torch.nonzero(usable).flatten().tolist():
        ids = blocks[b : b + 1] if keep is None else new_id[blocks[b : b + 1]]
        stage_lp = torch.log_softmax(model(input_ids=ids).logits.float()[0], -1)
        ref = base_lp[b].float()
        base_top = ref.argmax(-1)
        if keep is not None:
            ref_kept = ref[:, index]
            removed += float((1 - ref_kept.exp().sum(-1)).clamp_min(0).sum())
            ref = ref_kept - torch.logsumexp(ref_kept, -1, keepdim=True)
            stage_top = index[stage_lp.argmax(-1)]
        else:
            stage_top = stage_lp.argmax(-1)
        kl_sum += float((ref.exp() * (ref - stage_lp)).sum())
        agree += int((stage_top == base_top).sum())
        positions += ids.shape[1]
    return {"kl": max(0.0, kl_sum / positions), "top1_agreement": agree / positions, "positions": positions,
            "blocks_skipped": int((~usable).sum()), "base_mass_removed": removed / positions if keep is not None else 0.0}
