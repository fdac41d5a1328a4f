"""Fast int4 prefill on CPU: dequantize a packed int4 weight to bf16 and use the bf16 GEMM.

    from kmed.llm.compression.prefill import dequantize_packed_t
    wt = dequantize_packed_t(packed, scales, offsets, in_features, group_size)   # bf16 [K, N]
    y = x @ wt

Torch's CPU int4 kernel (``_weight_int4pack_mm_for_cpu``) is ideal for decoding (one token reads
4 bits per weight at memory bandwidth) but computes with fp32 FMAs: ~340 GFLOP/s on 2 cores,
against ~900 for oneDNN's bf16 GEMM. A long prompt is compute-bound, so for many tokens it pays to
expand the weight to bf16 first (~5 ms for 8192×2048) and run the bf16 GEMM.

The expansion is a small C++ loop compiled once with ``torch.utils.cpp_extension.load_inline``
(cached under ``~/.cache/torch_extensions``). Without a compiler it is simply not used: every
call falls back to the int4 kernel. ``KMED_INT4_PREFILL=0`` turns it off.

Packed layout (torch 2.x, checked at runtime by ``layout_ok``): rows in blocks of 64; byte
``[block, k, j]`` holds row ``64·block + j`` in its low nibble and row ``64·block + 32 + j`` in its
high nibble.
"""

from __future__ import annotations

import os
import threading
from functools import lru_cache

import torch

MIN_TOKENS = 32  # below this the int4 kernel is already as fast (and reads 4× fewer bytes)

_SOURCE = r"""
#include <torch/extension.h>
#include <c10/util/BFloat16.h>
#if defined(__AVX512F__) && defined(__AVX512BF16__)
#include <immintrin.h>
#define KMED_AVX512_BF16 1
#endif

// 16 weights: nibbles (uint8) * scale + offset -> bf16.
static inline void expand16(const uint8_t* q, const float* s, const float* b, c10::BFloat16* o) {
#ifdef KMED_AVX512_BF16
  __m512 v = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)q)));
  v = _mm512_fmadd_ps(v, _mm512_loadu_ps(s), _mm512_loadu_ps(b));
  _mm256_storeu_si256((__m256i*)o, (__m256i)_mm512_cvtneps_pbh(v));
#else
  for (int i = 0; i < 16; ++i) o[i] = c10::BFloat16(float(q[i]) * s[i] + b[i]);
#endif
}

torch::Tensor dequant_int4_t(torch::Tensor packed, torch::Tensor scales, torch::Tensor offsets, int64_t K, int64_t g) {
  TORCH_CHECK(packed.dtype() == torch::kUInt8 && packed.is_contiguous());
  TORCH_CHECK(scales.dtype() == torch::kFloat32 && offsets.dtype() == torch::kFloat32);
  const int64_t N = packed.size(0);
  const int64_t NB = N / 64;
  auto out = torch::empty({K, N}, torch::dtype(torch::kBFloat16));
  const uint8_t* P = packed.data_ptr<uint8_t>();
  const float* S = scales.data_ptr<float>();    // [K/g, N]
  const float* B = offsets.data_ptr<float>();   // [K/g, N]
  c10::BFloat16* O = out.data_ptr<c10::BFloat16>();
  // Block-major: one 64-row block's scales stay in L1 while its K columns are expanded.
  at::parallel_for(0, NB, 4, [&](int64_t b0, int64_t b1) {
    uint8_t q[64];
    for (int64_t nb = b0; nb < b1; ++nb) {
      const int64_t n0 = nb * 64;
      for (int64_t k = 0; k < K; ++k) {
        const uint8_t* p = P + (nb * K + k) * 32;
        for (int j = 0; j < 32; ++j) { q[j] = p[j] & 15; q[32 + j] = p[j] >> 4; }
        const float* s = S + (k / g) * N + n0;
        const float* b = B + (k / g) * N + n0;
        c10::BFloat16* o = O + k * N + n0;
        for (int c = 0; c < 64; c += 16) expand16(q + c, s + c, b + c, o + c);
      }
    }
  });
  return out;
}
"""

_lock = threading.Lock()


@lru_cache(maxsize=1)
def _extension():
    """The compiled helper, or None (no compiler, disabled, or a layout this code does not know)."""
    if os.environ.get("KMED_INT4_PREFILL", "1") == "0":
        return None
    try:
        from torch.utils.cpp_extension import load_inline

        with _lock:
            module = load_inline(
                name="kmed_int4_prefill_v4", cpp_sources=_SOURCE, functions=["dequant_int4_t"],
                extra_cflags=["-O3", "-march=native", "-fopenmp"], extra_ldflags=["-fopenmp"], verbose=False,
            )
    except Exception:  # noqa: BLE001 - no compiler or headers: the int4 kernel still works
        return None
    return module if layout_ok(module) else None


def layout_ok(module) -> bool:
    """The helper reproduces ``(q - 8)·scale + zero`` from torch's packed layout on a test matrix."""
    from kmed.llm.compression.qlinear import dequantize_int4, pack_int4_for_cpu, quantize_int4

    w = torch.randn(128, 64, generator=torch.Generator().manual_seed(0))
    q, sz = quantize_int4(w, 32)
    scales, offsets = split_scales(sz)
    got = module.dequant_int4_t(pack_int4_for_cpu(q), scales, offsets, 64, 32).float().t()
    return bool(torch.allclose(got, dequantize_int4(q, sz, 32), atol=1e-2, rtol=1e-2))


def split_scales(scales_zeros: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """[K/g, N, 2] (scale, zero) → fp32 scale and offset ``zero − 8·scale``, each [K/g, N]."""
    s = scales_zeros[..., 0].float().contiguous()
    return s, (scales_zeros[..., 1].float() - 8 * s).contiguous()


def available() -> bool:
    return _extension() is not None


def dequantize_packed_t(packed: torch.Tensor, scales: torch.Tensor, offsets: torch.Tensor, in_features: int,
                        group_size: int) -> torch.Tensor | None:
    """bf16 Wᵀ [K, N] from the CPU-packed int4 weight, or None when the helper is unavailable."""
    module = _extension()
    if module is None or packed.shape[0] % 64:
        return None
    return module.dequant_int4_t(packed, scales, offsets, in_features, group_size)
