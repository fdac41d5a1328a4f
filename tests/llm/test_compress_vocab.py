"""Vocabulary trimming is exact on what it keeps: identical logits on kept tokens, identical pieces for
text the kept merges cover, still lossless for any text; and the pipeline's vocab stage scores the
trimmed model against the base across the change of tokenizer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from kmed.errors import ConfigError
from kmed.llm.compression import pipeline
from kmed.llm.compression import vocab as V
from kmed.llm.compression.evaluate import agreement, base_reference, text_nll
from kmed.llm.compression.recipe import recipe_from_dict

TEXTS = [
    "감기는 바이러스 때문에 생기는 병이라 항생제가 필요 없어요.",
    "열이 나면 해열제를 먹고 물을 충분히 마셔요.",
    "가슴이 타는 듯이 쓰리고 신물이 올라와요.",
    "두통이 심하고 목이 뻣뻣하면 바로 병원에 가야 해요.",
    "아이가 밤새 기침을 해서 잠을 못 자요.",
    "혈압약은 매일 같은 시간에 드세요.",
] * 3
CORPUS = TEXTS[:3]  # what the kept vocabulary is chosen from
UNSEEN = "당뇨병 환자는 발에 상처가 나지 않게 조심해요. Metformin 500 mg."


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from kmed.llm.tiny import save_tiny_model

    return save_tiny_model(tmp_path_factory.mktemp("gemma") / "base", arch="gemma3_text", texts=TEXTS, vocab_size=600)


@pytest.fixture(scope="module")
def trimmed(tiny, tmp_path_factory):
    tok = AutoTokenizer.from_pretrained(tiny)
    tj = json.loads((tiny / "tokenizer.json").read_text(encoding="utf-8"))
    keep, report = V.choose_vocabulary(tok, tj, CORPUS, keep_first=0)
    out = tmp_path_factory.mktemp("trimmed")
    new_tok = V.save_trimmed_tokenizer(tiny, out, keep)
    return tok, new_tok, keep, report, tj


def test_keeps_specials_corpus_and_the_merge_closure(trimmed):
    tok, new_tok, keep, report, tj = trimmed
    assert report["kept"] == len(keep) < len(tok)  # something was removed
    kept = set(keep)
    assert {tok.pad_token_id, tok.bos_token_id, tok.eos_token_id} <= kept
    for ids in tok(CORPUS, add_special_tokens=False)["input_ids"]:
        assert set(ids) <= kept
    vocab = tj["model"]["vocab"]
    pieces = {s for s, i in vocab.items() if i in kept}
    for left, right in (m.split(" ", 1) if isinstance(m, str) else m for m in tj["model"]["merges"]):
        if left + right in pieces:  # every kept token stays reachable by its merges
            assert left in pieces and right in pieces


def test_text_of_kept_tokens_tokenizes_to_the_same_pieces(trimmed):
    tok, new_tok, keep, _, _ = trimmed
    for text in CORPUS:
        old = tok(text, add_special_tokens=False).input_ids
        new = new_tok(text, add_special_tokens=False).input_ids
        assert [keep[i] for i in new] == old
    assert new_tok.eos_token == tok.eos_token and keep[new_tok.eos_token_id] == tok.eos_token_id


def test_any_text_still_round_trips(trimmed):
    tok, new_tok, keep, _, _ = trimmed
    ids = new_tok(UNSEEN, add_special_tokens=False).input_ids
    assert max(ids) < len(keep)
    assert new_tok.decode(ids) == tok.decode(tok(UNSEEN, add_special_tokens=False).input_ids)
    cov = V.coverage(tok, keep, [UNSEEN])
    assert cov["outside"] > 0 and 0 < cov["outside_share"] < 1


def test_kept_logits_are_identical_and_the_head_stays_tied(tiny, trimmed):
    tok, _, keep, _, _ = trimmed
    model = AutoModelForCausalLM.from_pretrained(tiny, dtype=torch.float32).eval()
    ids = tok(CORPUS[0], return_tensors="pt").input_ids
    with torch.no_grad():
        reference = model(input_ids=ids).logits[..., keep]
    V.trim_model_vocabulary(model, keep)
    new_ids = torch.tensor([[keep.index(i) for i in ids[0].tolist()]])
    with torch.no_grad():
        assert torch.equal(model(input_ids=new_ids).logits, reference)
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    assert model.config.vocab_size == len(keep)


def test_agreement_is_perfect_for_the_same_model_and_for_exact_trimming(tiny, trimmed):
    tok, _, keep, _, _ = trimmed
    model = AutoModelForCausalLM.from_pretrained(tiny, dtype=torch.float32).eval()
    blocks = torch.tensor([tok(CORPUS[0], add_special_tokens=False).input_ids[:12]])
    reference = base_reference(model, blocks)
    same = agreement(model, reference)
    assert same["top1_agreement"] == 1.0 and same["kl"] < 1e-3  # fp16 storage of the reference
    V.trim_model_vocabulary(model, keep)
    after = agreement(model, reference, keep)
    assert after["kl"] < 1e-3 and after["positions"] == 12 and after["blocks_skipped"] == 0
    assert 0.0 <= after["base_mass_removed"] < 1.0


def test_text_nll_skips_padding(tiny):
    tok = AutoTokenizer.from_pretrained(tiny)
    model = AutoModelForCausalLM.from_pretrained(tiny, dtype=torch.float32).eval()
    n_tokens = sum(len(i) + 1 for i in tok(CORPUS, add_special_tokens=False)["input_ids"])
    _, count = text_nll(model, tok, CORPUS, seq_len=8)
    blocks = -(-n_tokens // 8)
    assert count == n_tokens - blocks  # every real token but each block's first is predicted


def test_vocab_stage_in_the_pipeline(tiny, tmp_path, monkeypatch):
    monkeypatch.setattr(V, "triage_texts", lambda folder=None: [])
    recipe = recipe_from_dict({
        "name": "vocab-test",
        "eval": {"memory_subprocess": False, "speed_prompt_tokens": 8, "speed_new_tokens": 3, "ppl_seq_len": 32,
                 "max_eval_blocks": 8, "qa": False, "agreement_blocks": 4, "agreement_seq_len": 16},
        "stages": [{"kind": "vocab", "keep_first": 0, "corpus": ["kb"],
                    "gate": {"max_ppl_ratio": 1.5, "max_kl": 0.01}},
                   {"kind": "quantize", "scheme": "int8", "gate": {"max_ppl_ratio": 1.2}}],
    })
    result = pipeline.run(tiny, tmp_path / "out", recipe, log=lambda _: None)
    base, trim, quant = result["stages"]
    assert trim["vocab_size"] < base["vocab_size"] and trim["params"] < base["params"]
    assert trim["details"]["heldout_coverage"]["tokens"] > 0
    assert trim["agreement"]["kl"] < 0.01  # exact on the kept tokens
    assert quant["vocab_size"] == trim["vocab_size"]
    out_tok = AutoTokenizer.from_pretrained(Path(result["out"]) / "model")
    assert len(out_tok) == trim["vocab_size"]


def test_unknown_corpus_and_non_bpe_tokenizers_are_refused():
    with pytest.raises(ConfigError):
        recipe_from_dict({"stages": [{"kind": "vocab", "corpus": ["wikipedia"]}]})
    with pytest.raises(ConfigError):
        V.choose_vocabulary(None, {"model": {"type": "Unigram"}}, [])
