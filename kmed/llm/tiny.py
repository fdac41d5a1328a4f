"""Tiny GPT-NeoX and LLaMA models with a locally trained Korean tokenizer, for tests and benches.

    from kmed.llm.tiny import save_tiny_model
    path = save_tiny_model("/tmp/tiny-neox", arch="gpt_neox")       # a normal HF folder, in ~1 s
    AutoModelForCausalLM.from_pretrained(path); AutoTokenizer.from_pretrained(path)

No download is needed: the tokenizer is a byte-level BPE trained with ``tokenizers`` on the
KB's own sentences (any character outside its merges falls back to bytes, so nothing is ever
unknown), and the model is randomly initialised from a config at a tiny size.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from kmed.llm.models import ModelShape
from kmed.text_ko import split_sentences

# Small enough that a forward pass takes milliseconds on one core; every shape feature kept
# (partial rotary on GPT-NeoX, grouped-query attention on LLaMA).
TINY_SHAPES: dict[str, ModelShape] = {
    "gpt_neox": ModelShape(
        name="tiny-gpt-neox", arch="gpt_neox", hidden_size=64, num_layers=2, num_heads=4, num_kv_heads=4,
        intermediate_size=128, vocab_size=512, rotary_pct=0.5, max_position=2048,
    ),
    "llama": ModelShape(
        name="tiny-llama", arch="llama", hidden_size=64, num_layers=2, num_heads=4, num_kv_heads=2,
        intermediate_size=128, vocab_size=512, max_position=2048,
    ),
    # One KV head, a head wider than hidden/heads, one local and one global layer: Gemma 3's quirks.
    "gemma3_text": ModelShape(
        name="tiny-gemma3", arch="gemma3_text", hidden_size=64, num_layers=2, num_heads=4, num_kv_heads=1,
        head_size=32, intermediate_size=128, vocab_size=512, max_position=2048, sliding_window=16,
        full_attention_every=2, tie_embeddings=True,
    ),
}

BOS, EOS, PAD = "<|bos|>", "<|endoftext|>", "<|pad|>"
SPECIAL_TOKENS = [PAD, BOS, EOS]  # ids 0, 1, 2

# A minimal chat template, for testing the chat-template path of the prompt builder.
SIMPLE_CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)

# Used when the KB cannot be read, so a tiny model can always be built.
FALLBACK_TEXTS = [
    "열이 나고 목이 아프면 인후염일 수 있어요.",
    "가슴이 타는 듯이 쓰리면 역류성 식도염을 의심할 수 있어요.",
    "증상이 심해지면 내과나 이비인후과 진료를 받아 보세요.",
    "아세트아미노펜은 열을 내리고 통증을 줄이는 약이에요.",
    "하루 최대 용량을 넘기지 않도록 주의해요.",
    "잘 모르겠으면 의사나 약사와 상의해요.",
]

def kb_texts(kb_dir: str | Path | None = None) -> Iterator[str]:
    """The sentences of every condition and drug section in the KB, in file order.

    The KB is edited while people work; if it does not validate right now, whatever entries did
    validate are used rather than failing.
    """
    from kmed.data.kb import KBValidationError, load_kb, load_kb_or_fail

    try:
        kb = load_kb_or_fail(kb_dir)
    except KBValidationError:
        kb, _ = load_kb(kb_dir)
    for entry in [*kb.conditions.values(), *kb.drugs.values()]:
        for text in entry.sections.values():
            yield from split_sentences(text or "")


def _prompt_scaffold() -> list[str]:
    from kmed.llm.prompts import ANSWER_HEADER, SYSTEM_PROMPT

    lines = SYSTEM_PROMPT.splitlines() + ["### 지시", "### 참고 자료", "### 질문", ANSWER_HEADER, "참고 자료:", "질문:"]
    return lines * 4


def train_tokenizer(texts: Iterable[str], vocab_size: int = 512, chat_template: str | None = None):
    """A byte-level BPE ``PreTrainedTokenizerFast`` trained on ``texts`` (specials: pad 0, bos 1, eos 2)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    texts = [t for t in texts if t.strip()] or FALLBACK_TEXTS
    # The grounded prompt's fixed text is in every input; learning it keeps tiny prompts short (fast tests).
    texts = texts + _prompt_scaffold()
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # all 256 bytes: nothing is unknown
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=BOS, eos_token=EOS, pad_token=PAD)
    if chat_template:
        fast.chat_template = chat_template
    return fast


def build_tiny_model(arch: str = "gpt_neox", vocab_size: int = 512, seed: int = 0, **shape_overrides):
    """A randomly initialised tiny causal LM (deterministic for a given ``seed``)."""
    import dataclasses

    import torch
    from transformers import AutoModelForCausalLM

    if arch not in TINY_SHAPES:
        raise ValueError(f"unknown arch {arch!r}; use one of {list(TINY_SHAPES)}")
    shape = dataclasses.replace(TINY_SHAPES[arch], vocab_size=vocab_size, **shape_overrides)
    config = shape.to_hf_config(pad_token_id=0, bos_token_id=1, eos_token_id=2)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    model.generation_config.pad_token_id = 0
    model.generation_config.eos_token_id = 2
    return model.eval()


def save_tiny_model(
    path: str | Path,
    arch: str = "gpt_neox",
    texts: Iterable[str] | None = None,
    vocab_size: int = 512,
    seed: int = 0,
    chat_template: str | None = None,
    **shape_overrides,
) -> Path:
    """Train a tokenizer, build a tiny model sized to it, and ``save_pretrained`` both to ``path``."""
    path = Path(path)
    if texts is None:
        texts = list(kb_texts())
    tokenizer = train_tokenizer(texts, vocab_size=vocab_size, chat_template=chat_template)
    model = build_tiny_model(arch, vocab_size=len(tokenizer), seed=seed, **shape_overrides)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
