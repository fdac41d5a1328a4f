"""Greedy decoding for Gemma 3 text models in a few tensor operations a layer, without transformers' per-step machinery.

    from kmed.llm.gemma_decode import GemmaDecoder
    decoder = GemmaDecoder.for_model(model)          # None when the model is not a plain Gemma 3
    for token_id in decoder.greedy(prompt_ids, max_new_tokens=120, eos_ids={1, 106}): ...

Why: at 270 M parameters a decode step of transformers' Gemma 3 is mostly overhead. Of a 24 ms
step on 2 cores, the int8 matrix products take 8 ms; the rest is about 940 small operations
(dtype casts, mask and cache bookkeeping, six RMSNorms a layer written as five operations each)
and the Python around them. This module runs the same arithmetic on the model's own weights:

* each RMSNorm from one vector norm (``‖x‖``) where the reference does pow/mean/add/rsqrt/mul, and
  the query and key heads normalised and rotated together;
* the q, k and v projections as one matrix product, and gate and up as another. The fused
  weight is one tensor; each original module is given back a view of its rows, so no weight is
  held twice and the model's own ``forward`` still works;
* a preallocated KV cache written in place, and attention for one new token as one
  ``scaled_dot_product_attention`` call with the grouped query heads as rows of their key head
  (no mask: a sliding layer reads only the last ``sliding_window`` positions);
* rotary tables computed once for every position.

Dtypes follow the reference: the hidden state stays in the model's compute dtype, the norms run
in fp32 and cast back, rotary tables are cast to the compute dtype (only the rounding order inside
a norm differs, at fp32's last bits). The parity tests
(``tests/llm/test_gemma_decode.py``) compare logits and greedy tokens with transformers' own
Gemma 3 on tiny models, sliding window included, in fp32 and in kmed's int8 checkpoint.

Supported: ``Gemma3ForCausalLM`` without logit soft-capping, with default rotary embeddings,
batch 1, projections that are ``nn.Linear`` or kmed's ``Int8WeightOnlyLinear`` (others run
unfused through their own ``forward``). A peft-wrapped model is not supported: merge the adapter
first (``kmed train merge``). ``for_model`` returns None for anything else and callers keep
transformers' ``generate``.
"""

from __future__ import annotations

import ctypes
from collections.abc import Iterable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from kmed.llm.compression.qlinear import Int8WeightOnlyLinear


def _trim_heap() -> None:
    """Give freed heap back to the OS (glibc); fusing layer by layer then never holds two copies of the model."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: the allocator keeps the pages, nothing breaks
        pass


def _fuse(modules: list[nn.Module]):
    """One matmul for several projections of the same input, or None when they cannot be fused.

    Returns ``(kind, weight, scale)``. The modules' own weights become views of the fused one.
    """
    if all(type(m) is nn.Linear and m.bias is None for m in modules):
        fused = torch.cat([m.weight.detach() for m in modules]).contiguous()
        start = 0
        for m in modules:
            rows = m.weight.shape[0]
            m.weight = nn.Parameter(fused[start : start + rows], requires_grad=False)
            start += rows
        return "linear", fused, None
    if all(type(m) is Int8WeightOnlyLinear and m.bias is None for m in modules):
        weight = torch.cat([m.weight_int8 for m in modules]).contiguous()
        scale = torch.cat([m.weight_scale for m in modules]).contiguous()
        start = 0
        for m in modules:
            rows = m.out_features
            m.weight_int8, m.weight_scale = weight[start : start + rows], scale[start : start + rows]
            start += rows
        return "int8", weight, scale
    return None


class _Projection:
    """Several projections of one input: fused when their kind allows, else each module in turn."""

    def __init__(self, modules: list[nn.Module]):
        self.modules = modules
        self.fused = _fuse(modules)

    def one_row(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` [1, in] → [1, sum of widths]."""
        if self.fused is None:
            return torch.cat([m(x) for m in self.modules], dim=-1)
        kind, weight, scale = self.fused
        if kind == "linear":
            return F.linear(x, weight)
        return torch.ops.aten._weight_int8pack_mm(x.to(torch.bfloat16), weight, scale)

    def rows(self, x: torch.Tensor) -> list[torch.Tensor]:
        """A prompt: each module's own ``forward``, which picks the kernel for many rows."""
        return [m(x) for m in self.modules]


class _Layer:
    def __init__(self, layer: nn.Module, layer_type: str, config):
        attn, mlp = layer.self_attn, layer.mlp
        self.sliding = config.sliding_window if layer_type == "sliding_attention" else None
        self.layer_type = layer_type
        self.qkv = _Projection([attn.q_proj, attn.k_proj, attn.v_proj])
        self.o_proj = attn.o_proj
        self.gate_up = _Projection([mlp.gate_proj, mlp.up_proj])
        self.down_proj = mlp.down_proj
        self.norms = {name: _norm_weight(getattr(layer, name)) for name in
                      ("input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm", "post_feedforward_layernorm")}
        # The query heads and the key heads are normalised in one call over their stacked rows.
        heads, kv_heads = config.num_attention_heads, config.num_key_value_heads
        q_scale, eps_d = _norm_weight(attn.q_norm, heads)
        k_scale, _ = _norm_weight(attn.k_norm, kv_heads)
        self.qk_norm = torch.cat([q_scale, k_scale]), eps_d


def _norm_weight(norm: nn.Module, rows: int = 1) -> tuple[torch.Tensor, float]:
    """Gemma's RMSNorm as ``(scale, d·eps)``: ``x · rsqrt(mean(x²) + eps) · (1 + weight)`` is computed as
    ``x · rsqrt(‖x‖² + d·eps) · (1 + weight)·√d``, the same formula in three fewer operations.
    ``rows`` repeats the scale for a stack of heads normalised in one call."""
    weight = norm.weight.detach().float()
    d = weight.shape[-1]
    return ((1.0 + weight) * d ** 0.5).expand(rows, d).contiguous(), d * float(norm.eps)


def _rms(x: torch.Tensor, norm: tuple[torch.Tensor, float]) -> torch.Tensor:
    scale, eps_d = norm
    xf = x.float()
    inverse = torch.linalg.vector_norm(xf, dim=-1, keepdim=True).square_().add_(eps_d).rsqrt_()
    return (xf * inverse * scale).to(x.dtype)


def _rotate(x: torch.Tensor, cos: torch.Tensor, signed_sin: torch.Tensor) -> torch.Tensor:
    """Rotary embedding: the reference's ``x·cos + rotate_half(x)·sin``, where rotate_half(x) =
    (−x₂, x₁) is a roll by half the width with the sign moved into the sine table."""
    return x * cos + torch.roll(x, x.shape[-1] // 2, -1) * signed_sin


def _prefill_mask(kept: int, n: int, window: int | None, device) -> torch.Tensor | None:
    """Which cached positions each new position may attend to: itself and the ones before it, within
    ``window`` of it on a sliding layer. None when that is plain causal attention from position 0."""
    if kept == 0 and window is None:
        return None
    query = torch.arange(kept, n, device=device)[:, None]
    key = torch.arange(n, device=device)[None, :]
    allowed = key <= query
    if window is not None:
        allowed &= query - key < window
    return allowed


class GemmaDecoder:
    """Prefill and one-token steps over a preallocated KV cache, for one sequence at a time."""

    def __init__(self, model: nn.Module):
        config = model.config
        self.config = config
        self.model = model
        backbone = model.model
        self.embed = backbone.embed_tokens
        self.final_norm = _norm_weight(backbone.norm)
        self.lm_head = model.lm_head
        self.heads = config.num_attention_heads
        self.kv_heads = config.num_key_value_heads
        self.head_dim = config.head_dim
        self.scaling = config.query_pre_attn_scalar ** -0.5
        self.layers = []
        for i, layer in enumerate(backbone.layers):
            self.layers.append(_Layer(layer, config.layer_types[i], config))
            _trim_heap()
        self.rotary = backbone.rotary_emb
        with torch.inference_mode():
            self.dtype = self.embed(torch.zeros(1, 1, dtype=torch.long, device=self.device)).dtype
        self._tables: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self.keys: list[torch.Tensor] = []
        self.values: list[torch.Tensor] = []
        self.length = 0  # positions in the cache
        self.cached_ids: list[int] = []  # the token at each cached position
        self.reused = 0  # positions the last prefill kept from the cache

    @property
    def device(self) -> torch.device:
        if getattr(self, "_device", None) is None:
            tensor = next(iter(self.model.buffers()), None)
            self._device = (tensor if tensor is not None else next(self.model.parameters())).device
        return self._device

    @staticmethod
    def unsupported_reason(model: nn.Module) -> str | None:
        config = getattr(model, "config", None)
        if type(model).__name__ not in ("Gemma3ForCausalLM", "NativeGemma") or getattr(config, "model_type", None) != "gemma3_text":
            return "not a Gemma 3 text model"
        if config.attn_logit_softcapping is not None or config.final_logit_softcapping is not None:
            return "logit soft-capping"
        if getattr(config, "use_bidirectional_attention", False):
            return "bidirectional attention"
        rope = getattr(config, "rope_parameters", None) or {}
        if any((rope.get(t) or {}).get("rope_type", "default") != "default" for t in set(config.layer_types)):
            return "rotary scaling other than the default"
        return None

    @classmethod
    def for_model(cls, model: nn.Module) -> GemmaDecoder | None:
        return None if cls.unsupported_reason(model) else cls(model)

    # ---- position tables and cache -------------------------------------------------------------

    def _table(self, layer_type: str, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        cos, sin = self._tables.get(layer_type, (None, None))
        if cos is None or cos.shape[0] < length:
            size = max(length, 2 * (0 if cos is None else cos.shape[0]), 1024)
            positions = torch.arange(size, device=self.device)[None]
            probe = torch.empty(0, dtype=self.dtype, device=self.device)
            cos, sin = self.rotary(probe, positions, layer_type)  # the reference's own tables, [1, size, D]
            half = cos.shape[-1] // 2
            sin = torch.cat([-sin[0, :, :half], sin[0, :, half:]], dim=-1)  # the sign of rotate_half
            self._tables[layer_type] = cos, sin = cos[0], sin
        return cos, sin

    def reset(self, capacity: int) -> None:
        """An empty cache for ``capacity`` positions (prompt plus new tokens)."""
        shape = (1, self.kv_heads, capacity, self.head_dim)
        if not self.keys or self.keys[0].shape[2] < capacity:
            self.keys = [torch.empty(shape, dtype=self.dtype, device=self.device) for _ in self.layers]
            self.values = [torch.empty(shape, dtype=self.dtype, device=self.device) for _ in self.layers]
        self.length = 0
        self.cached_ids = []

    def reserve(self, capacity: int) -> None:
        """Room for ``capacity`` positions, keeping what the cache holds."""
        if not self.keys:
            self.reset(capacity)
        elif self.keys[0].shape[2] < capacity:
            self._grow(capacity)

    # ---- forward passes ---------------------------------------------------------------------------

    @torch.inference_mode()
    def prefill(self, ids: list[int] | torch.Tensor, reuse: bool = True) -> torch.Tensor:
        """Run the prompt into the cache; the logits of its last position, [vocab] fp32.

        ``reuse``: the positions the cache already holds for the same leading tokens (the previous
        prompt and its answer: the instructions every grounded prompt starts with) are kept, and
        only the rest is computed, attending to them, as llama.cpp's prompt cache does.
        """
        ids = torch.as_tensor(ids, dtype=torch.long, device=self.device).reshape(-1)
        n = ids.shape[0]
        kept = 0
        if reuse and self.cached_ids:
            limit = min(len(self.cached_ids), n - 1)  # at least one position is computed, for its logits
            same = torch.tensor(self.cached_ids[:limit], device=self.device) == ids[:limit]
            kept = limit if bool(same.all()) else int(same.int().argmin())
        self.length = kept
        self.reserve(n + 1)
        m = n - kept
        x = self.embed(ids[kept:][None])  # [1, m, H]
        masks: dict = {}
        d, hq, hk = self.head_dim, self.heads, self.kv_heads
        for i, layer in enumerate(self.layers):
            cos, sin = self._table(layer.layer_type, n)
            cos, sin = cos[kept:n, None], sin[kept:n, None]  # [m, 1, D]: one row per position, shared by heads
            h = _rms(x, layer.norms["input_layernorm"])
            q, k, v = layer.qkv.rows(h)
            qk = _rotate(_rms(torch.cat([q.view(m, hq, d), k.view(m, hk, d)], dim=1), layer.qk_norm), cos, sin)
            q, k = qk[:, :hq], qk[:, hq:]
            self.keys[i][0, :, kept:n] = k.transpose(0, 1)
            self.values[i][0, :, kept:n] = v.view(m, hk, d).transpose(0, 1)
            window = layer.sliding if layer.sliding is not None and n > layer.sliding else None
            if window not in masks:
                masks[window] = _prefill_mask(kept, n, window, self.device)
            mask = masks[window]
            out = F.scaled_dot_product_attention(
                q.transpose(0, 1)[None], self.keys[i][:, :, :n], self.values[i][:, :, :n], attn_mask=mask,
                is_causal=mask is None, scale=self.scaling, enable_gqa=hk != hq)
            out = layer.o_proj(out[0].transpose(0, 1).reshape(1, m, hq * d))
            x = x + _rms(out, layer.norms["post_attention_layernorm"])
            h = _rms(x, layer.norms["pre_feedforward_layernorm"])
            gate, up = layer.gate_up.rows(h)
            h = layer.down_proj(F.gelu(gate, approximate="tanh") * up)
            x = x + _rms(h, layer.norms["post_feedforward_layernorm"])
        self.length = n
        self.cached_ids = ids.tolist()
        self.reused = kept
        return self._logits(x[:, -1])

    @torch.inference_mode()
    def step(self, token: int) -> torch.Tensor:
        """Append one token; the logits for the next, [vocab] fp32."""
        pos = self.length
        if pos >= self.keys[0].shape[2]:
            self._grow(2 * pos)
        ids = torch.tensor([[token]], dtype=torch.long, device=self.device)
        x = self.embed(ids)[0]  # [1, H]
        d, hq, hk = self.head_dim, self.heads, self.kv_heads
        group = hq // hk
        for i, layer in enumerate(self.layers):
            cos, sin = self._table(layer.layer_type, pos + 1)
            cos, sin = cos[pos], sin[pos]
            h = _rms(x, layer.norms["input_layernorm"])
            qkv = layer.qkv.one_row(h).to(x.dtype)[0]
            qk = _rotate(_rms(qkv[: (hq + hk) * d].view(hq + hk, d), layer.qk_norm), cos, sin)
            q, k = qk[:hq], qk[hq:]
            self.keys[i][0, :, pos] = k
            self.values[i][0, :, pos] = qkv[(hq + hk) * d :].view(hk, d)
            start = 0 if layer.sliding is None else max(0, pos + 1 - layer.sliding)
            # The new token sees every cached position in its window, so no mask is needed; a key
            # head's query heads become the query rows of that head.
            out = F.scaled_dot_product_attention(
                q.view(1, hk, group, d), self.keys[i][:, :, start : pos + 1], self.values[i][:, :, start : pos + 1],
                scale=self.scaling)
            out = layer.o_proj(out.reshape(1, hq * d))
            x = x + _rms(out, layer.norms["post_attention_layernorm"])
            h = _rms(x, layer.norms["pre_feedforward_layernorm"])
            gate_up = layer.gate_up.one_row(h).to(x.dtype)
            width = gate_up.shape[-1] // 2
            h = layer.down_proj(F.gelu(gate_up[:, :width], approximate="tanh") * gate_up[:, width:])
            x = x + _rms(h, layer.norms["post_feedforward_layernorm"])
        self.length = pos + 1
        self.cached_ids.append(token)
        return self._logits(x)

    def _grow(self, capacity: int) -> None:
        for store in (self.keys, self.values):
            for i, old in enumerate(store):
                new = torch.empty((*old.shape[:2], capacity, old.shape[3]), dtype=old.dtype, device=old.device)
                new[:, :, : self.length] = old[:, :, : self.length]
                store[i] = new

    def _logits(self, last: torch.Tensor) -> torch.Tensor:
        return self.lm_head(_rms(last.reshape(1, -1), self.final_norm)).float()[0]

    # ---- decoding -----------------------------------------------------------------------------------

    @torch.inference_mode()
    def greedy(self, prompt_ids: list[int], max_new_tokens: int, eos_ids: Iterable[int] = (),
               repetition_penalty: float = 1.0) -> Iterator[int]:
        """Greedy tokens after ``prompt_ids``, stopping at an end-of-sequence id (not yielded).

        ``repetition_penalty`` is transformers' rule: every id already in the prompt or the output
        has its logit divided by the penalty when positive and multiplied when negative.
        """
        eos = set(eos_ids)
        if max_new_tokens <= 0:
            return
        self.reserve(len(prompt_ids) + max_new_tokens)
        logits = self.prefill(prompt_ids)
        seen = None
        if repetition_penalty != 1.0:
            seen = torch.zeros(logits.shape[-1], dtype=torch.bool, device=logits.device)
            seen[torch.as_tensor(prompt_ids, device=logits.device).clamp(max=logits.shape[-1] - 1)] = True
        for produced in range(max_new_tokens):
            if seen is not None:
                picked = logits[seen]
                logits[seen] = torch.where(picked < 0, picked * repetition_penalty, picked / repetition_penalty)
            token = int(logits.argmax())
            if token in eos:
                return
            yield token
            if produced + 1 == max_new_tokens:
                return
            if seen is not None:
                seen[token] = True
            logits = self.step(token)


def stream_text(decoder: GemmaDecoder, tokenizer, prompt_ids: list[int], max_new_tokens: int, eos_ids: Iterable[int] = (),
                repetition_penalty: float = 1.0, stats: dict | None = None) -> Iterator[str]:
    """The answer as text pieces while greedy tokens arrive, as transformers' text streamer cuts them.

    A piece is emitted once the decoded text no longer ends inside a character (U+FFFD). ``stats``
    receives ``first_token_at`` (``time.perf_counter()``) and ``new_tokens``. Closing the iterator
    stops decoding.
    """
    import time

    stats = {} if stats is None else stats
    stats["new_tokens"] = 0
    ids: list[int] = []
    shown = 0
    for token in decoder.greedy(prompt_ids, max_new_tokens, eos_ids, repetition_penalty):
        if not ids:
            stats["first_token_at"] = time.perf_counter()
        ids.append(token)
        stats["new_tokens"] = len(ids)
        text = tokenizer.decode(ids, skip_special_tokens=True)
        if text.endswith("\ufffd"):
            continue
        if len(text) > shown:
            yield text[shown:]
            shown = len(text)
    text = tokenizer.decode(ids, skip_special_tokens=True) if ids else ""
    if len(text) > shown:
        yield text[shown:]
