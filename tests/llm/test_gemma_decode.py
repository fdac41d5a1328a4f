"""kmed's Gemma 3 decoder against transformers' own Gemma 3, on tiny models built from a config.

The tiny model has a sliding window of 16, so prompts of 40 tokens exercise the windowed mask in
prefill and the window's start in decoding. Its RMSNorm weights are randomised (they start at
zero), so the ``1 + weight`` scale is tested too.
"""

from __future__ import annotations

import pytest
import torch

from kmed.llm.compression.quantize import quantize_model
from kmed.llm.gemma_decode import GemmaDecoder, stream_text
from kmed.llm.tiny import build_tiny_model


def _tiny_gemma(scheme: str | None = None, **shape):
    model = build_tiny_model("gemma3_text", num_layers=4, **shape)
    with torch.no_grad():
        gen = torch.Generator().manual_seed(3)
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
    if scheme:
        quantize_model(model, scheme, group_size=32)
    return model


@pytest.fixture(scope="module")
def ids():
    return torch.randint(3, 512, (1, 40), generator=torch.Generator().manual_seed(1))


def _reference_steps(model, ids: torch.Tensor, split: int) -> torch.Tensor:
    """transformers' logits for positions split-1 … end: the prompt, then one token at a time with its cache."""
    from transformers import DynamicCache

    cache = DynamicCache(config=model.config)
    with torch.no_grad():
        out = model(input_ids=ids[:, :split], cache=cache, use_cache=True)
        rows = [out.logits[0, -1]]
        for t in range(split, ids.shape[1]):
            out = model(input_ids=ids[:, t : t + 1], cache=out.past_key_values, use_cache=True)
            rows.append(out.logits[0, -1])
    return torch.stack(rows).float()


def test_fp32_logits_equal_transformers_in_prefill_and_every_step(ids):
    model = _tiny_gemma()
    with torch.no_grad():
        full = model(input_ids=ids).logits[0].float()
    decoder = GemmaDecoder.for_model(model)
    assert decoder is not None
    decoder.reset(48)
    mine = [decoder.prefill(ids[0, :10])] + [decoder.step(int(t)) for t in ids[0, 10:]]
    # Positions 10 … 39 of the cached path, beyond the 16-token window from position 16 on.
    assert torch.allclose(torch.stack(mine[:-1]), full[9:39], atol=2e-5)
    assert torch.allclose(decoder.prefill(ids[0]), full[-1], atol=2e-5)  # a 40-token prompt: the windowed mask


def test_int8_checkpoint_matches_transformers_cached_decoding(ids):
    """Same kernels as the reference (int8 for one row, bf16 for a prompt ≥ 32 rows), so the match is close."""
    model = _tiny_gemma("int8_wo")
    reference = _reference_steps(model, ids, 33)
    decoder = GemmaDecoder.for_model(model)
    mine = torch.stack([decoder.prefill(ids[0, :33])] + [decoder.step(int(t)) for t in ids[0, 33:]])
    scale = reference.abs().max()
    assert float((mine - reference).abs().max() / scale) < 0.02  # bf16 activations: a few ulps of 2^-8
    assert torch.equal(mine.argmax(-1), reference.argmax(-1))


@pytest.mark.parametrize("scheme", [None, "int8_wo"])
def test_greedy_tokens_equal_generate_with_repetition_penalty(ids, scheme):
    model = _tiny_gemma(scheme)
    prompt = ids[:, :20]
    with torch.no_grad():
        expected = model.generate(prompt, max_new_tokens=24, do_sample=False, repetition_penalty=1.3,
                                  eos_token_id=None, pad_token_id=0)[0, 20:].tolist()
    decoder = GemmaDecoder.for_model(model)
    assert list(decoder.greedy(prompt[0].tolist(), 24, repetition_penalty=1.3)) == expected


def test_greedy_stops_at_end_of_sequence_and_at_the_budget(ids):
    decoder = GemmaDecoder.for_model(_tiny_gemma())
    free = list(decoder.greedy(ids[0, :12].tolist(), 8))
    assert len(free) == 8
    stopped = list(decoder.greedy(ids[0, :12].tolist(), 8, eos_ids={free[3]}))
    assert stopped == free[: free.index(free[3])]  # stops before the first end id, which is not yielded
    assert list(decoder.greedy(ids[0, :12].tolist(), 0)) == []


def test_the_cache_grows_when_decoding_runs_past_its_capacity(ids):
    model = _tiny_gemma()
    with torch.no_grad():
        full = model(input_ids=ids).logits[0].float()
    decoder = GemmaDecoder.for_model(model)
    decoder.reset(8)
    decoder.prefill(ids[0, :5])  # capacity 8: the steps below grow it twice
    last = [decoder.step(int(t)) for t in ids[0, 5:]][-2]
    assert torch.allclose(last, full[-2], atol=2e-5)


def test_fused_projections_leave_the_model_itself_unchanged(ids):
    model = _tiny_gemma("int8_wo")
    with torch.no_grad():
        before = model(input_ids=ids).logits
    GemmaDecoder.for_model(model)  # q/k/v and gate/up now share one weight each; modules hold views
    with torch.no_grad():
        assert torch.equal(model(input_ids=ids).logits, before)
    layer = model.model.layers[0].self_attn
    assert layer.k_proj.weight_int8.untyped_storage().data_ptr() == layer.q_proj.weight_int8.untyped_storage().data_ptr()


def test_other_models_are_left_to_transformers():
    assert GemmaDecoder.for_model(build_tiny_model("llama")) is None
    capped = build_tiny_model("gemma3_text")
    capped.config.final_logit_softcapping = 30.0
    assert GemmaDecoder.unsupported_reason(capped) == "logit soft-capping"


class _ByteTokenizer:
    """Each token is one UTF-8 byte, so a Hangul syllable spans three tokens."""

    def decode(self, ids, skip_special_tokens=True):
        return bytes(i - 3 for i in ids if i >= 3).decode("utf-8", errors="replace")


def test_stream_text_never_emits_half_a_character():
    text = "감기예요."
    tokens = [b + 3 for b in text.encode("utf-8")]

    class Scripted:
        def greedy(self, prompt_ids, max_new_tokens, eos_ids, repetition_penalty):
            yield from tokens

    stats: dict = {}
    pieces = list(stream_text(Scripted(), _ByteTokenizer(), [5], 64, stats=stats))
    assert "".join(pieces) == text
    assert all("\ufffd" not in p for p in pieces)
    assert stats["new_tokens"] == len(tokens) and "first_token_at" in stats


# ---- the native load (kmed.llm.gemma_native): the same model without transformers' classes ----------


def test_native_load_of_an_int8_folder_decodes_exactly_like_the_transformers_load(ids, tmp_path):
    from kmed.llm.compression.quantize import load_quantized, save_quantized
    from kmed.llm.gemma_native import load_native

    save_quantized(_tiny_gemma("int8_wo"), tmp_path)
    reference, _ = load_quantized(tmp_path)
    native, why = load_native(tmp_path)
    assert why is None and type(native).__name__ == "NativeGemma"
    a, b = GemmaDecoder(reference), GemmaDecoder(native)
    assert torch.equal(a.prefill(ids[0, :33]), b.prefill(ids[0, :33]))
    assert all(torch.equal(a.step(int(t)), b.step(int(t))) for t in ids[0, 33:])
    assert list(a.greedy(ids[0, :20].tolist(), 12)) == list(b.greedy(ids[0, :20].tolist(), 12))


def test_native_load_of_a_plain_folder_matches_transformers_logits(ids, tmp_path):
    from kmed.llm.gemma_native import load_native

    model = _tiny_gemma()
    model.save_pretrained(tmp_path)
    with torch.no_grad():
        full = model(input_ids=ids).logits[0].float()
    native, why = load_native(tmp_path)
    assert why is None and native.eos_token_ids == {2}
    assert torch.allclose(GemmaDecoder(native).prefill(ids[0]), full[-1], atol=2e-5)  # tied head, sliding window


def test_native_load_names_what_it_does_not_read(tmp_path):
    from kmed.llm.compression.quantize import save_quantized
    from kmed.llm.gemma_native import load_native

    save_quantized(_tiny_gemma("int4"), tmp_path / "int4")
    assert load_native(tmp_path / "int4")[1].startswith("quantized modules")
    build_tiny_model("llama").save_pretrained(tmp_path / "llama")
    assert load_native(tmp_path / "llama") == (None, "model_type 'llama'")
    assert load_native(tmp_path / "missing")[0] is None


def test_a_prompt_sharing_its_start_with_the_last_one_reuses_those_positions(ids):
    """As with the same instructions before every grounded prompt: only the new part is computed."""
    model = _tiny_gemma()
    decoder = GemmaDecoder.for_model(model)
    first = ids[0, :30].tolist()
    list(decoder.greedy(first, 4))  # the cache now holds the first prompt and its 3 decoded tokens
    second = first[:22] + ids[0, 30:40].tolist()  # the same 22 leading tokens, then something else
    reused = decoder.prefill(second)
    assert decoder.reused == 22
    fresh = decoder.prefill(second, reuse=False)
    assert decoder.reused == 0
    assert torch.allclose(reused, fresh, atol=2e-5)  # 32 positions: the sliding window (16) is crossed
    with torch.no_grad():
        assert torch.allclose(reused, model(input_ids=torch.tensor([second])).logits[0, -1].float(), atol=2e-5)
    assert decoder.prefill(second) is not None and decoder.reused == len(second) - 1  # all known: the last is recomputed
