"""Quantized layers for CPU inference, each storing a portable form and packing it for a kernel.

    Int4WeightOnlyLinear  4-bit groupwise weights, bf16 activations: torch's CPU tinygemm kernel
                          (``_weight_int4pack_mm_for_cpu``). Decode reads ~0.56 byte per weight;
                          prompts of ≥ 32 tokens expand the weight to bf16 first (``prefill.py``).
    Int8DynamicLinear     int8 per-channel weights, activations quantized per call: fbgemm
                          (``quantized::linear_dynamic``). Fast int8 prefill; fp32 in and out.
    Int8WeightOnlyLinear  int8 per-channel weights, bf16 activations (``_weight_int8pack_mm``):
                          the output head of the int4 scheme, where 4 bits would hurt most.
    Int8Embedding         int8 rows with one scale each: a lookup, so speed is unchanged.

Each module keeps its tensors as buffers named in the checkpoint (``qweight``, ``scales_zeros``,
…) and builds the kernel's packed layout in ``pack()``. Loading packs and then drops the
portable copy, so only one copy of the weights is ever resident.
"""

from __future__ import annotations

import warnings
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import nn

from kmed.llm.compression import prefill

INT4_N_MULTIPLE = 16  # the CPU int4 kernel needs out_features divisible by 16


@lru_cache(maxsize=1)
def cpu_has_vnni() -> bool:
    """With VNNI, fbgemm accumulates u8×s8 without saturating, so activations can use all 8 bits."""
    try:
        flags = open("/proc/cpuinfo", encoding="utf-8").read()
    except OSError:
        return False
    return "avx512_vnni" in flags or "avx_vnni" in flags


@lru_cache(maxsize=1)
def _int4_pack_is_row_local() -> bool:
    """Whether packing 64-row blocks separately equals packing the whole matrix (true in torch 2.x).

    Packing needs an int32 copy of the weight (8× the packed bytes); doing it block by block keeps
    that transient small. Checked once per process so a future layout change only costs memory.
    """
    q = torch.randint(0, 16, (128, 64), dtype=torch.int32, generator=torch.Generator().manual_seed(0))
    whole = torch.ops.aten._convert_weight_to_int4pack_for_cpu(q, 1)
    parts = torch.cat([torch.ops.aten._convert_weight_to_int4pack_for_cpu(q[i : i + 64].contiguous(), 1) for i in (0, 64)])
    return torch.equal(whole, parts)


def pack_int4_for_cpu(qweight: torch.Tensor, rows: int = 512) -> torch.Tensor:
    """Portable uint8 [N, K/2] → the CPU kernel's layout, ``rows`` at a time when that is exact."""
    n = qweight.shape[0]
    if n % 64 or n <= rows or not _int4_pack_is_row_local():
        return torch.ops.aten._convert_weight_to_int4pack_for_cpu(unpack_int4(qweight), 1)
    out = torch.empty_like(qweight)
    for i in range(0, n, rows):
        block = torch.ops.aten._convert_weight_to_int4pack_for_cpu(unpack_int4(qweight[i : i + rows]), 1)
        out[i : i + block.shape[0]] = block
    return out


def int4_supported(linear: nn.Linear, group_size: int) -> bool:
    return linear.in_features % group_size == 0 and linear.out_features % INT4_N_MULTIPLE == 0


def quantize_int4(weight: torch.Tensor, group_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Asymmetric groupwise 4-bit: ``w ≈ (q - 8) · scale + zero`` (tinygemm convention).

    Returns ``qweight`` uint8 [N, K/2] (high nibble: even column) and ``scales_zeros`` bf16 [K/g, N, 2].
    """
    n, k = weight.shape
    w = weight.detach().float().reshape(n, k // group_size, group_size)
    lo, hi = w.amin(-1, keepdim=True), w.amax(-1, keepdim=True)
    scale = ((hi - lo) / 15).clamp(min=1e-8)
    q = torch.round((w - lo) / scale).clamp_(0, 15).to(torch.uint8).reshape(n, k)
    zero = lo + 8 * scale
    scales_zeros = torch.cat([scale, zero], dim=-1).transpose(0, 1).contiguous().to(torch.bfloat16)
    return (q[:, 0::2] << 4 | q[:, 1::2]).contiguous(), scales_zeros


def unpack_int4(qweight: torch.Tensor) -> torch.Tensor:
    """uint8 [N, K/2] → int32 [N, K] with values 0..15."""
    return torch.stack([qweight >> 4, qweight & 0xF], dim=-1).reshape(qweight.shape[0], -1).to(torch.int32)


def dequantize_int4(qweight: torch.Tensor, scales_zeros: torch.Tensor, group_size: int) -> torch.Tensor:
    q = unpack_int4(qweight).float()
    n, k = q.shape
    sz = scales_zeros.float().transpose(0, 1)  # [N, K/g, 2]
    w = (q.reshape(n, k // group_size, group_size) - 8) * sz[..., :1] + sz[..., 1:]
    return w.reshape(n, k)


def quantize_int8_rows(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric per-row int8: ``w ≈ q · scale``."""
    w = weight.detach().float()
    scale = (w.abs().amax(dim=1) / 127).clamp(min=1e-8)
    q = torch.round(w / scale[:, None]).clamp_(-127, 127).to(torch.int8)
    return q, scale


class _Packed(nn.Module):
    """Shared plumbing: packing, dropping the portable buffers, and a clear error on re-saving.

    A module with a kernel layout names its ``portable`` buffers and builds the layout in ``_pack``;
    one whose kernel reads the plain layout names none, and ``pack`` leaves it as it is.
    """

    portable: tuple[str, ...] = ()
    _packed: object = None

    def pack(self, drop_portable: bool = False) -> None:
        if not self.portable:
            return
        self._packed = self._pack()
        if drop_portable:
            self._drop()

    def _pack(self) -> object:
        raise NotImplementedError

    def _kernel(self) -> object:
        """The packed layout, built on first use when the portable buffers were loaded unpacked."""
        if self._packed is None:
            self.pack()
        return self._packed

    def _rows(self, x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """A linear's input as contiguous [tokens, in_features] rows of ``dtype``."""
        return x.reshape(-1, self.in_features).to(dtype).contiguous()

    def _unrows(self, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Rows back to the input's leading shape, ``out_features`` wide."""
        return y.reshape(*x.shape[:-1], self.out_features)

    def _drop(self) -> None:
        for name in self.portable:
            self._buffers[name] = None
        self._dropped = True

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        if getattr(self, "_dropped", False):
            raise RuntimeError(
                f"{type(self).__name__} was loaded for inference only (portable weights dropped to save memory); "
                "save the model before loading it with load_quantized, or re-run `kmed compress`."
            )
        super()._save_to_state_dict(destination, prefix, keep_vars)


class Int4WeightOnlyLinear(_Packed):
    portable = ("qweight",)

    def __init__(self, in_features: int, out_features: int, bias: bool, group_size: int, device=None):
        super().__init__()
        self.in_features, self.out_features, self.group_size = in_features, out_features, group_size
        self.register_buffer("qweight", torch.empty(out_features, in_features // 2, dtype=torch.uint8, device=device))
        self.register_buffer(
            "scales_zeros", torch.empty(in_features // group_size, out_features, 2, dtype=torch.bfloat16, device=device)
        )
        self.register_buffer("bias", torch.empty(out_features, dtype=torch.bfloat16, device=device) if bias else None)

    @classmethod
    def from_linear(cls, linear: nn.Linear, group_size: int) -> Int4WeightOnlyLinear:
        m = cls(linear.in_features, linear.out_features, linear.bias is not None, group_size)
        m.qweight, m.scales_zeros = quantize_int4(linear.weight, group_size)
        if linear.bias is not None:
            m.bias = linear.bias.detach().to(torch.bfloat16).clone()
        return m

    def _pack(self) -> torch.Tensor:
        return pack_int4_for_cpu(self.qweight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        packed = self._kernel()
        x2 = self._rows(x, torch.bfloat16)
        y = None
        if x2.shape[0] >= prefill.MIN_TOKENS:  # a prompt: compute-bound, so expand to bf16 and use the bf16 GEMM
            scales, offsets = prefill.split_scales(self.scales_zeros)
            wt = prefill.dequantize_packed_t(packed, scales, offsets, self.in_features, self.group_size)
            y = None if wt is None else x2 @ wt
        if y is None:  # decoding (memory-bound): the int4 kernel reads 4 bits per weight
            y = torch.ops.aten._weight_int4pack_mm_for_cpu(x2, packed, self.group_size, self.scales_zeros)
        if self.bias is not None:
            y = y + self.bias
        return self._unrows(y, x)

    def extra_repr(self) -> str:
        return f"in={self.in_features}, out={self.out_features}, group_size={self.group_size}"


class _Int8RowsLinear(_Packed):
    """int8 [out, in] weights with one scale per row; the scales and the bias are ``scale_dtype``."""

    scale_dtype: torch.dtype

    def __init__(self, in_features: int, out_features: int, bias: bool, device=None):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        dtype = self.scale_dtype
        self.register_buffer("weight_int8", torch.empty(out_features, in_features, dtype=torch.int8, device=device))
        self.register_buffer("weight_scale", torch.empty(out_features, dtype=dtype, device=device))
        self.register_buffer("bias", torch.empty(out_features, dtype=dtype, device=device) if bias else None)

    @classmethod
    def from_linear(cls, linear: nn.Linear) -> _Int8RowsLinear:
        m = cls(linear.in_features, linear.out_features, linear.bias is not None)
        q, scale = quantize_int8_rows(linear.weight)
        m.weight_int8, m.weight_scale = q, scale.to(cls.scale_dtype)
        if linear.bias is not None:
            m.bias = linear.bias.detach().to(cls.scale_dtype).clone()
        return m


class Int8WeightOnlyLinear(_Int8RowsLinear):
    scale_dtype = torch.bfloat16

    # From this many rows (a prompt), expanding the weight to bf16 and running the bf16 GEMM beats
    # the int8 kernel: 8.5 ms against 18 ms for 512 × 640 → 2048 on one core (avx512_bf16).
    PROMPT_ROWS = 32

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x2 = self._rows(x, torch.bfloat16)
        if x2.shape[0] >= self.PROMPT_ROWS:
            y = F.linear(x2, self.weight_int8.to(torch.bfloat16) * self.weight_scale[:, None])
        else:
            y = torch.ops.aten._weight_int8pack_mm(x2, self.weight_int8, self.weight_scale)
        if self.bias is not None:
            y = y + self.bias
        return self._unrows(y, x)


class Int8DynamicLinear(_Int8RowsLinear):
    portable = ("weight_int8",)
    scale_dtype = torch.float32

    def __init__(self, in_features: int, out_features: int, bias: bool, device=None):
        super().__init__(in_features, out_features, bias, device)
        self.reduce_range = not cpu_has_vnni()

    def _pack(self) -> object:
        with warnings.catch_warnings():  # torch marks quantized tensors deprecated; fbgemm still needs one
            warnings.simplefilter("ignore")
            zeros = torch.zeros(self.out_features, dtype=torch.long)
            qweight = torch._make_per_channel_quantized_tensor(self.weight_int8, self.weight_scale.double(), zeros, 0)
            bias = None if self.bias is None else self.bias.float()
            return torch.ops.quantized.linear_prepack(qweight, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.ops.quantized.linear_dynamic(self._rows(x, torch.float32), self._kernel(), self.reduce_range)
        return self._unrows(y, x).to(x.dtype)


class Int8Embedding(_Packed):
    """int8 rows with one scale each. ``embed_scale`` keeps a scaled embedding's factor (Gemma: √hidden)."""

    def __init__(self, num_embeddings: int, embedding_dim: int, dtype=torch.float32, padding_idx=None, device=None,
                 embed_scale: float = 1.0):
        super().__init__()
        self.num_embeddings, self.embedding_dim, self.padding_idx = num_embeddings, embedding_dim, padding_idx
        self.embed_scale = float(embed_scale)
        self.register_buffer("weight_int8", torch.empty(num_embeddings, embedding_dim, dtype=torch.int8, device=device))
        self.register_buffer("weight_scale", torch.empty(num_embeddings, dtype=dtype, device=device))

    @classmethod
    def from_embedding(cls, emb: nn.Embedding) -> Int8Embedding:
        m = cls(emb.num_embeddings, emb.embedding_dim, emb.weight.dtype, emb.padding_idx,
                embed_scale=getattr(emb, "scalar_embed_scale", 1.0))
        q, scale = quantize_int8_rows(emb.weight)
        m.weight_int8, m.weight_scale = q, scale.to(emb.weight.dtype)
        return m

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        rows = F.embedding(ids, self.weight_int8).to(self.weight_scale.dtype)
        rows = rows * self.weight_scale[ids].unsqueeze(-1)
        if self.embed_scale != 1.0:  # rounded to the compute dtype first, as the unquantized module does
            rows = rows * torch.tensor(self.embed_scale, dtype=rows.dtype)
        return rows


QUANT_MODULES: dict[str, type[_Packed]] = {"int4_wo": Int4WeightOnlyLinear, "int8_wo": Int8WeightOnlyLinear,
                                           "int8_dyn": Int8DynamicLinear, "int8_embedding": Int8Embedding}
