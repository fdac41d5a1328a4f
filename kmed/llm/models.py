"""The model table: shapes of real Korean causal LMs, and what each costs to store and decode.

    from kmed.llm.models import get_shape, measure_memory_bandwidth
    shape = get_shape("polyglot-ko-1.3b")
    shape.param_count()                                   # 1,331,810,304
    shape.decode_ceiling_tok_s(measure_memory_bandwidth(), dtype_bits=8)
    model = AutoModelForCausalLM.from_config(shape.to_hf_config(num_layers=2))

The table itself is data (``configs/models.yaml``, each entry linking its source ``config.json``).
Decoding one token reads every weight once plus the KV cache so far, so on a CPU the speed limit
is memory bandwidth / bytes per token; ``kmed bench llm`` prints achieved speed against it.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, fields
from functools import lru_cache
from pathlib import Path
from typing import Literal

from kmed.artifacts import read_yaml_config
from kmed.errors import ConfigError

MODELS_YAML = Path(__file__).resolve().parents[2] / "configs" / "models.yaml"
Arch = Literal["gpt_neox", "llama", "gemma3_text"]
ARCHS: tuple[str, ...] = ("gpt_neox", "llama", "gemma3_text")


@dataclass(frozen=True)
class ModelShape:
    """One architecture at one size; enough to rebuild it and to reason about its cost."""

    name: str
    arch: Arch
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    intermediate_size: int
    vocab_size: int
    rotary_pct: float = 1.0  # share of each head's dims that get RoPE
    max_position: int = 2048
    tie_embeddings: bool = False
    source_url: str = ""
    hf_id: str = ""
    rope_theta: float = 10000.0
    published_params: int | None = None
    head_size: int | None = None  # Gemma 3: a head width that is not hidden_size / num_heads
    sliding_window: int | None = None  # Gemma 3: local layers attend to this many tokens
    full_attention_every: int = 6  # Gemma 3: every n-th layer attends globally, the rest locally

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise ConfigError(f"모델 '{self.name}': 지원하지 않는 구조 '{self.arch}'예요.", f"arch는 {list(ARCHS)} 중 하나로 써 주세요.")
        if self.hidden_size % self.num_heads and self.head_size is None:
            raise ConfigError(f"모델 '{self.name}': hidden_size가 num_heads로 나누어떨어지지 않아요.")
        if self.num_heads % self.num_kv_heads:
            raise ConfigError(f"모델 '{self.name}': num_heads가 num_kv_heads의 배수가 아니에요.")
        if self.arch == "gpt_neox" and self.num_kv_heads != self.num_heads:
            raise ConfigError(f"모델 '{self.name}': GPT-NeoX는 num_kv_heads == num_heads여야 해요.")
        if not 0.0 < self.rotary_pct <= 1.0:
            raise ConfigError(f"모델 '{self.name}': rotary_pct는 0보다 크고 1 이하여야 해요.")

    @property
    def head_dim(self) -> int:
        return self.head_size or self.hidden_size // self.num_heads

    # ---- building -------------------------------------------------------------------------

    def to_hf_config(self, num_layers: int | None = None, **overrides):
        """A transformers config for this shape (``num_layers`` to build a shallower copy)."""
        import transformers

        layers = self.num_layers if num_layers is None else num_layers
        kwargs = dict(
            vocab_size=self.vocab_size,
            hidden_size=self.hidden_size,
            num_hidden_layers=layers,
            num_attention_heads=self.num_heads,
            intermediate_size=self.intermediate_size,
            max_position_embeddings=self.max_position,
            tie_word_embeddings=self.tie_embeddings,
        )
        if self.arch == "gpt_neox":
            config_class = transformers.GPTNeoXConfig
            kwargs.update(
                # transformers v5 keeps the partial-rotary share in rope_parameters, not rotary_pct.
                rope_parameters={"rope_type": "default", "rope_theta": self.rope_theta,
                                 "partial_rotary_factor": self.rotary_pct},
                use_parallel_residual=True, bos_token_id=0, eos_token_id=2,
            )
        elif self.arch == "gemma3_text":
            config_class = transformers.Gemma3TextConfig
            kwargs.update(
                num_key_value_heads=self.num_kv_heads, head_dim=self.head_dim, query_pre_attn_scalar=self.head_dim,
                sliding_window=self.sliding_window or 512,
                layer_types=["full_attention" if (i + 1) % self.full_attention_every == 0 else "sliding_attention"
                             for i in range(layers)],
                tie_word_embeddings=True, pad_token_id=0, bos_token_id=2, eos_token_id=1,
            )
        else:
            config_class = transformers.LlamaConfig
            kwargs.update(num_key_value_heads=self.num_kv_heads, rms_norm_eps=1e-5,
                          rope_parameters={"rope_type": "default", "rope_theta": self.rope_theta})
        kwargs.update(overrides)
        return config_class(**kwargs)

    @classmethod
    def from_hf_config(cls, config, name: str = "") -> ModelShape:
        """The shape of a loaded model's config (GPT-NeoX, LLaMA or Gemma 3 family)."""
        arch = getattr(config, "model_type", "")
        if arch not in ARCHS:
            raise ConfigError(f"지원하지 않는 모델 구조예요: {arch!r}.", f"{list(ARCHS)} 구조의 모델을 써 주세요.")
        rope = getattr(config, "rope_parameters", None) or {}
        rope = rope.get("full_attention", rope)  # Gemma 3 keeps one set per attention kind
        heads = config.num_attention_heads
        gemma = arch == "gemma3_text"
        types = list(getattr(config, "layer_types", None) or [])
        return cls(
            name=name or getattr(config, "_name_or_path", "") or arch,
            arch=arch,
            hidden_size=config.hidden_size,
            num_layers=config.num_hidden_layers,
            num_heads=heads,
            num_kv_heads=getattr(config, "num_key_value_heads", None) or heads,
            intermediate_size=config.intermediate_size,
            vocab_size=config.vocab_size,
            rotary_pct=float(rope.get("partial_rotary_factor", 1.0)),
            max_position=config.max_position_embeddings,
            tie_embeddings=bool(getattr(config, "tie_word_embeddings", False)),
            rope_theta=float(rope.get("rope_theta", 10000.0)),
            head_size=config.head_dim if gemma else None,
            sliding_window=getattr(config, "sliding_window", None) if gemma else None,
            full_attention_every=(types.index("full_attention") + 1) if "full_attention" in types else 6,
        )

    # ---- cost -----------------------------------------------------------------------------

    def embedding_params(self) -> int:
        return self.vocab_size * self.hidden_size

    def layer_params(self) -> int:
        h, i = self.hidden_size, self.intermediate_size
        if self.arch == "gpt_neox":
            attention = (h * 3 * h + 3 * h) + (h * h + h)  # fused qkv and output, with biases
            mlp = (h * i + i) + (i * h + h)
            norms = 2 * 2 * h  # two LayerNorms, weight and bias
            return attention + mlp + norms
        kv = self.num_kv_heads * self.head_dim
        q = self.num_heads * self.head_dim
        attention = 2 * h * q + 2 * h * kv  # q, o and the (grouped) k, v; no biases
        mlp = 3 * h * i  # gate, up, down
        if self.arch == "gemma3_text":  # four RMSNorms around the blocks, plus per-head q and k norms
            return attention + mlp + 4 * h + 2 * self.head_dim
        return attention + mlp + 2 * h  # two RMSNorms

    def param_count(self) -> int:
        """Exactly what ``AutoModelForCausalLM.from_config(self.to_hf_config())`` holds."""
        final_norm = 2 * self.hidden_size if self.arch == "gpt_neox" else self.hidden_size
        head = 0 if self.tie_embeddings else self.embedding_params()
        return self.embedding_params() + self.num_layers * self.layer_params() + final_norm + head

    def bytes_on_disk(self, dtype_bits: float, embedding_bits: float | None = None) -> int:
        """Checkpoint size with every weight at ``dtype_bits`` (optionally embeddings at another width)."""
        emb_bits = dtype_bits if embedding_bits is None else embedding_bits
        embeddings = self.embedding_params() * (1 if self.tie_embeddings else 2)
        rest = self.param_count() - embeddings
        return int(rest * dtype_bits / 8 + embeddings * emb_bits / 8)

    def kv_bytes_per_token(self, kv_bits: float = 16) -> int:
        """Keys and values one token adds to the cache, across all layers."""
        return int(2 * self.num_layers * self.num_kv_heads * self.head_dim * kv_bits / 8)

    def bytes_per_decoded_token(
        self, dtype_bits: float, context_tokens: int = 0, kv_bits: float | None = None
    ) -> int:
        """Bytes one decode step must read: every weight once, plus the KV cache of the context.

        The input embedding is a lookup (one row), so an untied embedding table barely counts; the
        output head is a full matmul. The KV cache is held at ``kv_bits`` (default: 16 for
        quantized weights, whose activations run in 16 bits, otherwise ``dtype_bits``).
        """
        kv_bits = kv_bits if kv_bits is not None else (16 if dtype_bits < 16 else dtype_bits)
        read_params = self.param_count()
        if not self.tie_embeddings:
            read_params -= self.embedding_params() - self.hidden_size
        weights = read_params * dtype_bits / 8
        return int(weights + context_tokens * self.kv_bytes_per_token(kv_bits))

    def decode_ceiling_tok_s(
        self, bandwidth_bytes_per_s: float, dtype_bits: float, context_tokens: int = 0
    ) -> float:
        """Upper bound on decode tokens/s when memory bandwidth is the limit."""
        return bandwidth_bytes_per_s / self.bytes_per_decoded_token(dtype_bits, context_tokens)

    def to_dict(self) -> dict:
        return asdict(self)


# ---- the table --------------------------------------------------------------------------------


@lru_cache(maxsize=4)
def load_model_table(path: str | Path = MODELS_YAML) -> dict[str, ModelShape]:
    """Read ``configs/models.yaml``; unknown or missing keys are errors naming the entry."""
    raw = read_yaml_config(path, default=Path(path))
    allowed = {f.name for f in fields(ModelShape)} - {"name"}
    table: dict[str, ModelShape] = {}
    for name, entry in raw.items():
        if not isinstance(entry, dict):
            raise ConfigError(f"{path}: '{name}' 항목이 '키: 값' 형태가 아니에요.", f"쓸 수 있는 키: {sorted(allowed)}")
        unknown = sorted(set(entry) - allowed)
        if unknown:
            raise ConfigError(f"{path}: '{name}'에 알 수 없는 키 {unknown}가 있어요.", f"쓸 수 있는 키: {sorted(allowed)}")
        try:
            table[name] = ModelShape(name=name, **entry)
        except TypeError as exc:
            raise ConfigError(f"{path}: '{name}' 항목이 잘못됐어요: {exc}") from exc
    return table


def list_models() -> list[str]:
    return list(load_model_table())


def get_shape(name: str) -> ModelShape:
    """A table entry by its key or its hub id (``EleutherAI/polyglot-ko-1.3b``)."""
    table = load_model_table()
    if name in table:
        return table[name]
    for shape in table.values():
        if shape.hf_id and shape.hf_id.lower() == name.lower():
            return shape
    raise ConfigError(f"모델 표에 '{name}'이(가) 없어요.", f"다음 중 하나를 써 주세요: {', '.join(table)}")


# ---- bandwidth --------------------------------------------------------------------------------


def measure_memory_bandwidth(size_mb: int = 256, repeats: int = 5, mode: Literal["read", "copy"] = "read") -> float:
    """Memory bandwidth in bytes/s: the best of ``repeats`` passes over a buffer bigger than cache.

    ``read`` sums a float32 buffer (what decoding does to weights); ``copy`` counts bytes read
    plus bytes written. Uses torch, so it runs on the same threads as the model.
    """
    import torch

    numel = max(1, size_mb * 1024 * 1024 // 4)
    src = torch.ones(numel, dtype=torch.float32)
    dst = torch.empty_like(src) if mode == "copy" else None
    moved = numel * 4 * (2 if mode == "copy" else 1)
    best = float("inf")
    for _ in range(repeats + 1):  # the first pass only warms pages and caches
        start = time.perf_counter()
        if dst is not None:
            dst.copy_(src)
        else:
            float(src.sum())
        best = min(best, time.perf_counter() - start)
    return moved / best
