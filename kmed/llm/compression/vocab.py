"""Vocabulary trimming: keep the tokens Korean medical text needs, drop the rest of the embedding.

    keep, report = choose_vocabulary(tokenizer, corpus_texts, keep_first=5000)
    trim_model_vocabulary(model, keep)                   # embedding rows (and an untied head) sliced
    trim_tokenizer_json(tokenizer_json, keep)            # BPE vocab renumbered, merges filtered

Gemma 3 270M spends 63 % of its parameters on a 262,144-token embedding, but Korean medical text
uses a few thousand of those tokens. The rule that picks what stays (``choose_vocabulary``):

- every special token except the 6,242 ``<unusedN>`` placeholders, and the 256 byte-fallback
  tokens ``<0x00>``…``<0xFF>``, so any text still tokenizes (unknown pieces fall back to bytes);
- every token the training corpus uses (KB sentences outside the held-out split, the triage
  utterances, the prompt scaffolding); never the evaluation sets;
- every single-character token of Hangul, ASCII, Latin-1, general punctuation and CJK symbols,
  and every pure-Hangul token;
- the ``keep_first`` lowest ids made of ASCII only (SentencePiece orders pieces by score, so
  these are the commonest English, number and code pieces a medical answer may quote);
- the closure: both parents of every BPE merge producing a kept token, so every kept token can
  still be reached by the merges.

Trimming is exact: the kept tokens' logits are the same numbers as before, and text the kept
merges fully cover tokenizes to the same pieces. The merges left out are only those whose result
was removed; in the original run of any such text they never fired, and removing a merge that
never fires cannot change which merge fires first at any step.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path

import torch
from torch import nn

from kmed.errors import ConfigError
from kmed.llm.compression.arch import family_of, get_module

BYTE_TOKEN = re.compile(r"<0x[0-9A-Fa-f]{2}>")
UNUSED_TOKEN = re.compile(r"<unused\d+>")
SPACE = "▁"


def _is_hangul(ch: str) -> bool:
    return "\uac00" <= ch <= "\ud7a3" or "\u1100" <= ch <= "\u11ff" or "\u3130" <= ch <= "\u318f"


def _is_common_char(ch: str) -> bool:
    """Hangul, ASCII, Latin-1, general punctuation, letter-like symbols, arrows, CJK symbols, units."""
    o = ord(ch)
    return (_is_hangul(ch) or o < 0x250 or 0x2000 <= o <= 0x23FF or 0x2460 <= o <= 0x25FF
            or 0x3000 <= o <= 0x303F or 0x3200 <= o <= 0x33FF or 0xFF00 <= o <= 0xFFEF)


def _pieces(tokenizer_json: dict) -> tuple[dict[str, int], list[tuple[str, str]], list[dict]]:
    model = tokenizer_json.get("model", {})
    if model.get("type") != "BPE":
        raise ConfigError(f"어휘 줄이기는 BPE 토크나이저만 지원해요 (받은 형식: {model.get('type')!r}).",
                          "레시피에서 vocab 단계를 빼세요.")
    merges = [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    return model["vocab"], merges, tokenizer_json.get("added_tokens", [])


def choose_vocabulary(tokenizer, tokenizer_json: dict, corpus: Iterable[str], keep_first: int = 5000) -> tuple[list[int], dict]:
    """The sorted old ids to keep, and a report of why each group was kept."""
    vocab, merges, added = _pieces(tokenizer_json)
    by_id = {i: s for s, i in vocab.items()}
    groups: dict[str, set[int]] = {
        "special": {a["id"] for a in added if not UNUSED_TOKEN.fullmatch(a["content"])},
        "byte_fallback": {i for s, i in vocab.items() if BYTE_TOKEN.fullmatch(s)},
    }
    used: set[int] = set()
    texts = [t for t in corpus if t and t.strip()]
    for start in range(0, len(texts), 512):
        for ids in tokenizer(texts[start : start + 512], add_special_tokens=False)["input_ids"]:
            used.update(ids)
    groups["corpus"] = used
    groups["characters"] = {i for s, i in vocab.items()
                            if len(s.replace(SPACE, "")) == 1 and _is_common_char(s.replace(SPACE, ""))}
    groups["hangul_pieces"] = {i for s, i in vocab.items()
                               if s.replace(SPACE, "") and all(_is_hangul(c) for c in s.replace(SPACE, ""))}
    groups["first_ascii"] = {i for i in range(min(keep_first, len(by_id))) if i in by_id
                             and all(ord(c) < 128 for c in by_id[i].replace(SPACE, ""))}
    keep = set().union(*groups.values())
    producers: dict[str, list[tuple[str, str]]] = {}
    for left, right in merges:
        producers.setdefault(left + right, []).append((left, right))
    closure: set[int] = set()
    stack = [by_id[i] for i in keep if i in by_id]
    while stack:
        piece = stack.pop()
        for left, right in producers.get(piece, ()):
            for parent in (left, right):
                pid = vocab.get(parent)
                if pid is not None and pid not in keep:
                    keep.add(pid)
                    closure.add(pid)
                    stack.append(parent)
    groups["merge_parents"] = closure
    kept = sorted(i for i in keep if i < len(by_id) + len(added))
    report = {"kept": len(kept), "of": max(len(by_id), max((a["id"] for a in added), default=0) + 1),
              "corpus_texts": len(texts), "keep_first": keep_first,
              "groups": {name: len(ids) for name, ids in groups.items()}}
    return kept, report


def trim_tokenizer_json(tokenizer_json: dict, keep: list[int]) -> dict:
    """A copy of ``tokenizer.json`` with only ``keep`` (old ids, sorted), renumbered 0…n−1 in order."""
    vocab, merges, added = _pieces(tokenizer_json)
    new_id = {old: new for new, old in enumerate(keep)}
    by_id = {i: s for s, i in vocab.items()}
    out = json.loads(json.dumps(tokenizer_json))
    out["model"]["vocab"] = {by_id[old]: new for old, new in new_id.items() if old in by_id}
    kept_pieces = out["model"]["vocab"]
    out["model"]["merges"] = [[a, b] for a, b in merges if a in kept_pieces and b in kept_pieces and a + b in kept_pieces]
    out["added_tokens"] = [{**a, "id": new_id[a["id"]]} for a in added if a["id"] in new_id]
    _remap_ids(out.get("post_processor"), new_id)
    return out


def _remap_ids(node, new_id: dict[int, int]) -> None:
    """Rewrite the ``ids`` lists of a post-processor's special tokens in place."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "ids" and isinstance(value, list) and all(isinstance(v, int) for v in value):
                node[key] = [new_id[v] for v in value]
            else:
                _remap_ids(value, new_id)
    elif isinstance(node, list):
        for item in node:
            _remap_ids(item, new_id)


@torch.no_grad()
def trim_model_vocabulary(model: nn.Module, keep: list[int]) -> None:
    """Slice the input embedding (and an untied output head) to the ``keep`` rows, in place."""
    fam = family_of(model)
    index = torch.tensor(keep, dtype=torch.long)
    embed = get_module(model, f"{fam.backbone}.{fam.embed}")
    tied = bool(getattr(model.config, "tie_word_embeddings", False))
    head = get_module(model, fam.head)
    embed.weight = nn.Parameter(embed.weight.detach()[index].clone())
    embed.num_embeddings = len(keep)
    if embed.padding_idx is not None:
        embed.padding_idx = keep.index(embed.padding_idx) if embed.padding_idx in keep else None
    if tied:
        head.weight = embed.weight
    else:
        head.weight = nn.Parameter(head.weight.detach()[index].clone())
        if getattr(head, "bias", None) is not None:
            head.bias = nn.Parameter(head.bias.detach()[index].clone())
    head.out_features = len(keep)
    model.config.vocab_size = len(keep)
    new_id = {old: new for new, old in enumerate(keep)}
    for cfg in (model.config, getattr(model, "generation_config", None)):
        for key in ("pad_token_id", "bos_token_id", "eos_token_id"):
            value = getattr(cfg, key, None) if cfg is not None else None
            if isinstance(value, int):
                setattr(cfg, key, new_id.get(value))
            elif isinstance(value, list):
                setattr(cfg, key, [new_id[v] for v in value if v in new_id])


def save_trimmed_tokenizer(tokenizer_dir: str | Path, out: str | Path, keep: list[int]):
    """Write the trimmed ``tokenizer.json`` (and the other tokenizer files) to ``out``; returns it loaded."""
    from transformers import AutoTokenizer

    tokenizer_dir, out = Path(tokenizer_dir), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    source = json.loads((tokenizer_dir / "tokenizer.json").read_text(encoding="utf-8"))
    (out / "tokenizer.json").write_text(json.dumps(trim_tokenizer_json(source, keep), ensure_ascii=False), encoding="utf-8")
    for name in ("tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja"):
        if (tokenizer_dir / name).is_file():
            (out / name).write_text((tokenizer_dir / name).read_text(encoding="utf-8"), encoding="utf-8")
    return AutoTokenizer.from_pretrained(out)


def coverage(tokenizer, keep: list[int], texts: Iterable[str]) -> dict:
    """Share of the base tokenizer's tokens in ``texts`` that fall outside the kept set."""
    kept = set(keep)
    total = outside = 0
    for ids in tokenizer([t for t in texts if t], add_special_tokens=False)["input_ids"]:
        total += len(ids)
        outside += sum(1 for i in ids if i not in kept)
    return {"tokens": total, "outside": outside, "outside_share": outside / total if total else 0.0}


def triage_texts(folder: str | Path | None = None) -> list[str]:
    """The training utterances in ``data/triage/*.jsonl`` (patients' own words, never evaluation cases)."""
    folder = Path(folder) if folder else Path(__file__).resolve().parents[3] / "data" / "triage"
    texts = []
    for path in sorted(folder.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                try:
                    texts.append(json.loads(line)["text"])
                except (ValueError, KeyError):
                    continue
    return texts
