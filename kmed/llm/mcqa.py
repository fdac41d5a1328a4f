"""KorMedMCQA by log-likelihood: an exam floor for a causal LM, per subject, with the chance level.

    kmed eval mcqa --model models/gemma-3-270m [--data DIR] [--limit 200] [--method option_loglik|next_letter] [--json]

    items = load_items(None, limit=200)                    # ../shared/benchmarks/kormedmcqa_train_subset
    model, tokenizer = load_model("models/gemma-3-270m")  # a plain HF folder or a kmed compress folder
    report = score_items(model, tokenizer, items)          # accuracy, n, per_subject, chance, ci95, …

KorMedMCQA (Korean health-professional licensing exams) is CC BY-NC 2.0: it is read by path for
evaluation only, never trained on and never copied into the repository.

Two ways to read a base model's answer, neither of which needs it to follow instructions:

- ``option_loglik`` (default): for each option, the log-probability of `` {option}`` after
  ``질문: {question}\\n정답:``, summed over its tokens and divided by the option's length in
  characters. Per character, not per token, so the score does not change meaning when the
  vocabulary is trimmed or swapped, and long options are not penalised for being long. The
  question is run once; its KV cache is repeated for the options.
- ``next_letter``: the question with lettered options and ``정답:``, then the next-token
  log-probabilities of the letters. A letter's score is the log-sum-exp over its single-token
  spellings (`` A`` and ``A``), because tokenizers disagree on which one follows a colon.

At a few hundred questions the interval is several points wide: report it, and read the result as
a floor (can the model beat guessing at all?) rather than a gate that tells two stages apart.
"""

from __future__ import annotations

from collections import Counter
from functools import lru_cache
from pathlib import Path

import torch

from kmed.errors import ConfigError, KmedError, ModelLoadError
from kmed.llm.mcqa_data import LETTERS, LICENCE, SEED, McqaItem, McqaSet, load_items, to_markdown, wilson

__all__ = ["METHODS", "McqaItem", "McqaSet", "evaluate", "letter_scores", "load_items", "load_model", "option_scores",
           "score_items", "to_markdown", "wilson"]

METHODS = ("option_loglik", "next_letter")
PREAMBLE = "다음은 한국 보건의료인 국가시험 문제입니다."
# Logit rows ([positions, vocab] float32) held at once: 256 rows of Gemma's 262,144 words are 256 MiB.
LOGIT_ROWS = 256


# ----------------------------------------------------------------------------- model


def load_model(path: str | Path):
    """(model, tokenizer) from a plain HF folder or a ``kmed compress`` folder; ModelLoadError says what to give."""
    from kmed.llm.compression.evaluate import load_any
    from kmed.llm.compression.quantize import is_quantized_dir

    path = Path(path)
    fix = "--model 에 config.json 과 토크나이저가 있는 Hugging Face 모델 폴더(예: models/gemma-3-270m)나 kmed compress 결과 폴더를 주세요."
    if not path.is_dir():
        raise ModelLoadError(f"모델 폴더 '{path}'가 없어요.", fix)
    is_model = lambda folder: (folder / "config.json").is_file() or is_quantized_dir(folder)  # noqa: E731
    if not is_model(path) and is_model(path / "model"):
        path = path / "model"  # a `kmed compress --out` folder: its final model sits in model/
    if not is_model(path):
        raise ModelLoadError(f"'{path}'는 모델 폴더가 아니에요 (config.json 이 없어요).", fix)
    try:
        model, tokenizer = load_any(path)
    except KmedError:
        raise
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(f"'{path}'에서 모델을 불러오지 못했어요: {first[:200]}", fix) from exc
    if tokenizer is None:
        raise ModelLoadError(f"'{path}'에 토크나이저가 없어요.", "tokenizer_config.json 이 함께 있는 폴더를 주세요.")
    return model.eval(), tokenizer


# ----------------------------------------------------------------------------- prompts and tokens


def cloze_prompt(item: McqaItem) -> str:
    return f"{PREAMBLE}\n질문: {item.question}\n정답:"


def lettered_prompt(item: McqaItem) -> str:
    options = "\n".join(f"{LETTERS[i]}. {text}" for i, text in enumerate(item.options))
    return f"{PREAMBLE} 보기에서 정답 하나를 고르세요.\n질문: {item.question}\n{options}\n정답:"


def _encode_prompt(tokenizer, text: str) -> list[int]:
    """The prompt with the tokenizer's own specials in front (Gemma needs its BOS), none at the end."""
    ids = list(tokenizer(text)["input_ids"])
    while ids and tokenizer.eos_token_id is not None and ids[-1] == tokenizer.eos_token_id:
        ids.pop()
    return ids


def encode_options(tokenizer, item: McqaItem) -> tuple[list[int], list[list[int]]]:
    """(prompt ids, one id list per option). Options are encoded on their own, so every one meets the same prompt."""
    conts = [list(tokenizer(" " + text, add_special_tokens=False)["input_ids"]) for text in item.options]
    return _encode_prompt(tokenizer, cloze_prompt(item)), conts


def letter_token_ids(tokenizer, count: int) -> list[list[int]]:
    """Per letter, its single-token spellings (`` A``, ``A``); else the first token of ``A``."""
    out = []
    for letter in LETTERS[:count]:
        spellings = [tokenizer(form, add_special_tokens=False)["input_ids"] for form in (" " + letter, letter)]
        single = sorted({ids[0] for ids in spellings if len(ids) == 1})
        out.append(single or [spellings[1][0]])
    flat = [i for ids in out for i in ids]
    if len(flat) != len(set(flat)):
        raise ModelLoadError("이 토크나이저는 보기 글자 A–E 를 서로 다른 토큰으로 나누지 못해요.", "--method option_loglik 를 쓰세요.")
    return out


# ----------------------------------------------------------------------------- batched scoring


def _pad_id(tokenizer) -> int:
    for value in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if value is not None:
            return int(value)
    return 0


def _left_pad(seqs: list[list[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(ids, attention mask, position ids): pads on the left, so every row's last token is at -1."""
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, seq in enumerate(seqs):
        ids[row, width - len(seq):] = torch.tensor(seq, dtype=torch.long)
        mask[row, width - len(seq):] = 1
    return ids, mask, (mask.cumsum(-1) - 1).clamp(min=0)


def _token_logprobs(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """log p(target) per row of [rows, vocab] logits, a chunk of rows at a time (no full log-softmax copy)."""
    out = []
    for start in range(0, len(targets), 64):
        chunk = logits[start : start + 64].float()
        out.append(chunk.gather(-1, targets[start : start + 64, None])[:, 0] - torch.logsumexp(chunk, -1))
    return torch.cat(out) if out else torch.zeros(0)


@lru_cache(maxsize=1)
def _keeps_by_mask() -> bool:
    """Whether this transformers slices logits by a boolean [batch, seq] mask (5.x); older ones take an int."""
    try:
        from transformers.modeling_utils import slice_logits_to_keep

        return tuple(slice_logits_to_keep(torch.zeros(1, 2, 1), torch.tensor([[True, False]])).shape) == (1, 1)
    except (ImportError, IndexError, RuntimeError, TypeError):
        return False


def _kept_logits(model, kwargs: dict, keep: torch.Tensor) -> torch.Tensor:
    """Logits at the ``keep`` (bool [rows, seq]) positions only, flattened row by row: [keep.sum(), vocab]."""
    if _keeps_by_mask():
        return model(**kwargs, logits_to_keep=keep).logits
    return model(**kwargs, logits_to_keep=keep.shape[1]).logits[keep]


def _groups(order: list[int], cost: list[int], size: list[int], batch_size: int) -> list[list[int]]:
    """Consecutive runs of ``order`` with at most ``batch_size`` members and LOGIT_ROWS logit rows."""
    groups, current, rows = [], [], 0
    for index in order:
        if current and (len(current) >= batch_size or rows + cost[index] > LOGIT_ROWS or size[index] != size[current[0]]):
            groups.append(current)
            current, rows = [], 0
        current.append(index)
        rows += cost[index]
    return groups + ([current] if current else [])


@torch.no_grad()
def option_logprobs(model, tokenizer, items, batch_size: int = 8) -> list[list[float]]:
    """Per item, per option: the summed log-probability of the option's tokens after the cloze prompt.

    Prompts are left-padded and run once with the cache on; the cache is repeated once per option
    and the options (right-padded) continue from it. Logits are computed only where a token is
    scored: the prompt's last position (each option's first token) and inside each option.
    """
    encoded = [encode_options(tokenizer, item) for item in items]
    pad = _pad_id(tokenizer)
    cost = [sum(len(c) for c in conts) for _, conts in encoded]
    order = sorted(range(len(encoded)), key=lambda i: (len(encoded[i][1]), len(encoded[i][0])))
    results: list[list[float]] = [[] for _ in encoded]
    for group in _groups(order, cost, [len(conts) for _, conts in encoded], batch_size):
        repeats = len(encoded[group[0]][1])
        ids, mask, pos = _left_pad([encoded[i][0] for i in group], pad)
        out = model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True, logits_to_keep=1)
        conts = [c for i in group for c in encoded[i][1]]
        last = out.logits[:, -1].float()
        question = torch.arange(len(group)).repeat_interleave(repeats)
        first_lp = last[question, torch.tensor([c[0] for c in conts])] - torch.logsumexp(last, -1)[question]
        rest = torch.zeros(len(conts))
        width = max(len(c) for c in conts)
        if width > 1:
            cont_ids = torch.full((len(conts), width), pad, dtype=torch.long)
            cont_mask = torch.zeros_like(cont_ids)
            for row, cont in enumerate(conts):
                cont_ids[row, : len(cont)] = torch.tensor(cont)
                cont_mask[row, : len(cont)] = 1
            # transformers 5.x names the cache ``cache``; 4.x calls it ``past_key_values``.
            cache_key = "cache" if out.get("cache") is not None else "past_key_values"
            cache = out[cache_key]
            cache.batch_repeat_interleave(repeats)
            lengths = mask.sum(-1).repeat_interleave(repeats)
            kwargs = {"input_ids": cont_ids, "attention_mask": torch.cat([mask.repeat_interleave(repeats, 0), cont_mask], 1),
                      "position_ids": lengths[:, None] + torch.arange(width), cache_key: cache, "use_cache": True}
            # Position j of an option predicts its token j + 1; its last position predicts nothing.
            keep = torch.zeros((len(conts), width), dtype=torch.bool)
            for row, cont in enumerate(conts):
                keep[row, : len(cont) - 1] = True
            lp = _token_logprobs(_kept_logits(model, kwargs, keep), cont_ids[:, 1:][keep[:, :-1]])
            rest = torch.zeros(keep.shape).masked_scatter(keep, lp).sum(-1)
        totals = (first_lp + rest).tolist()
        for n, index in enumerate(group):
            results[index] = totals[n * repeats : (n + 1) * repeats]
    return results


def option_scores(model, tokenizer, items, batch_size: int = 8) -> list[list[float]]:
    """``option_loglik`` scores: summed log-probability / the option's length in characters."""
    sums = option_logprobs(model, tokenizer, items, batch_size)
    return [[s / max(1, len(text)) for s, text in zip(row, item.options, strict=True)] for row, item in zip(sums, items, strict=True)]


@torch.no_grad()
def letter_scores(model, tokenizer, items, batch_size: int = 8) -> list[list[float]]:
    """``next_letter`` scores: per option, log-sum-exp of its letter's token log-probabilities after ``정답:``."""
    prompts = [_encode_prompt(tokenizer, lettered_prompt(item)) for item in items]
    letters = letter_token_ids(tokenizer, max(len(item.options) for item in items))
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    results: list[list[float]] = [[] for _ in prompts]
    for start in range(0, len(order), batch_size):
        group = order[start : start + batch_size]
        ids, mask, pos = _left_pad([prompts[i] for i in group], _pad_id(tokenizer))
        logits = model(input_ids=ids, attention_mask=mask, position_ids=pos, logits_to_keep=1).logits[:, -1]
        logp = logits.float().log_softmax(-1)
        for row, index in enumerate(group):
            results[index] = [torch.logsumexp(logp[row, letters[k]], -1).item() for k in range(len(items[index].options))]
    return results


# ----------------------------------------------------------------------------- the report


def score_items(model, tokenizer, items, method: str = "option_loglik", batch_size: int = 8,
                rows: list | None = None) -> dict:
    """Accuracy, n, per-subject accuracy, the chance level and a Wilson 95 % interval; per-item rows if asked."""
    if method not in METHODS:
        raise ConfigError(f"알 수 없는 채점 방식이에요: {method!r}", f"--method 는 {', '.join(METHODS)} 중 하나예요.")
    if batch_size < 1:
        raise ConfigError(f"--batch-size {batch_size} 는 쓸 수 없어요.", "1 이상의 정수를 주세요.")
    if not len(items):
        raise ConfigError("채점할 문항이 없어요.", "--limit 을 늘리거나 --data 를 확인하세요.")
    model.eval()
    scorer = option_scores if method == "option_loglik" else letter_scores
    scores = scorer(model, tokenizer, items, batch_size)
    correct, seen, right = 0, Counter(), Counter()
    for item, row in zip(items, scores, strict=True):
        pred = max(range(len(row)), key=row.__getitem__)
        hit = pred == item.answer
        correct += hit
        seen[item.subject] += 1
        right[item.subject] += hit
        if rows is not None:
            rows.append({"id": item.id, "subject": item.subject, "answer": LETTERS[item.answer], "pred": LETTERS[pred],
                         "correct": hit, "scores": [round(s, 4) for s in row]})
    n = len(items)
    return {
        "accuracy": round(correct / n, 4),
        "n": n,
        "correct": correct,
        "ci95": wilson(correct, n),
        "chance": round(sum(1 / len(item.options) for item in items) / n, 4),
        "per_subject": {s: {"accuracy": round(right[s] / seen[s], 4), "n": seen[s], "correct": right[s]} for s in sorted(seen)},
        "method": method,
        "normalisation": "per character of the option" if method == "option_loglik" else "next-token letter",
        "sample": getattr(items, "sample", None) or {"kind": "given", "n": n},
    }


def evaluate(model_path: str | Path, data: str | Path | None = None, limit: int | None = 200,
             method: str = "option_loglik", batch_size: int = 8, seed: int = SEED) -> dict:
    """Load the items and the model, score, and add the model path, data and timings to the report."""
    import time

    if method not in METHODS:  # before the model loads
        raise ConfigError(f"알 수 없는 채점 방식이에요: {method!r}", f"--method 는 {', '.join(METHODS)} 중 하나예요.")
    items = load_items(data, limit=limit, seed=seed)
    start = time.perf_counter()
    model, tokenizer = load_model(model_path)
    loaded = time.perf_counter()
    report = score_items(model, tokenizer, items, method=method, batch_size=batch_size)
    report["seconds"] = {"load": round(loaded - start, 2), "score": round(time.perf_counter() - loaded, 2)}
    report["model"] = str(model_path)
    report["licence"] = LICENCE
    return report
