"""Random-weight checkpoints at a real shape, written straight in their final form, one tensor at a time.

    write_random_checkpoint("runs/bench/int4", get_shape("polyglot-ko-1.3b").to_hf_config(), scheme="int4")

For speed, size and memory only: a 1.3B GPT-NeoX is never held whole in fp32. Each projection's
weight is drawn (std 0.02, as HF initialises), quantized if the scheme says so, written, and
dropped, so building the int4 variant needs ~300 MB and the fp32 one streams 5 GB to disk.
The files are the same format ``kmed compress`` writes, and load through the same code.
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import torch

from kmed.llm.compression.ckpt import SafetensorsWriter
from kmed.llm.compression.qlinear import quantize_int4, quantize_int8_rows
from kmed.llm.compression.quantize import COMPUTE_DTYPE, empty_module, plan_modules, write_manifest

STD = 0.02


def _generator(name: str, seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + zlib.crc32(name.encode()))


def _random_dense(shape, name: str, seed: int, dtype: torch.dtype) -> torch.Tensor:
    """Plain parameters: norms' weights 1, biases 0, matrices N(0, 0.02)."""
    leaf = name.rsplit(".", 1)[-1]
    if len(shape) == 1:
        return (torch.ones if leaf == "weight" else torch.zeros)(shape, dtype=dtype)
    out = torch.empty(shape, dtype=dtype)
    rows = max(1, (64 << 20) // (4 * shape[-1]))  # ≤ 64 MB of fp32 at a time
    gen = _generator(name, seed)
    for i in range(0, shape[0], rows):
        out[i : i + rows] = torch.randn((min(rows, shape[0] - i), *shape[1:]), generator=gen).mul_(STD).to(dtype)
    return out


def _quantized_tensors(kind: str, module, name: str, seed: int, group_size: int) -> dict[str, torch.Tensor]:
    """All tensors of one quantized module, from a freshly drawn fp32 weight."""
    if kind == "int8_embedding":
        shape = (module.num_embeddings, module.embedding_dim)
    else:
        shape = (module.out_features, module.in_features)
    weight = torch.randn(shape, generator=_generator(name, seed)).mul_(STD)
    out: dict[str, torch.Tensor] = {}
    if kind == "int4_wo":
        out["qweight"], out["scales_zeros"] = quantize_int4(weight, group_size)
    else:
        out["weight_int8"], scale = quantize_int8_rows(weight)
        out["weight_scale"] = scale.to(module.weight_scale.dtype)
    bias = getattr(module, "bias", None)
    if isinstance(bias, torch.Tensor):
        out["bias"] = torch.zeros(bias.shape, dtype=bias.dtype)
    return out


def write_random_checkpoint(out: str | Path, config, scheme: str | None = None, dtype: torch.dtype = torch.float32,
                            group_size: int = 64, quantize_embeddings: bool = True, seed: int = 0) -> Path:
    """A ``from_pretrained``-able folder (``scheme=None``) or a ``load_quantized`` one (``int4``/``int8``)."""
    from transformers import AutoModelForCausalLM

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    dtype = COMPUTE_DTYPE[scheme] if scheme else dtype
    config.tie_word_embeddings = False
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    modules: dict[str, str] = {}
    skipped: list[str] = []
    if scheme:
        from kmed.llm.compression.arch import get_module, set_module

        modules, skipped = plan_modules(model, scheme, group_size, quantize_embeddings)
        for name, kind in modules.items():
            set_module(model, name, empty_module(kind, get_module(model, name), group_size, dtype))
    state = model.state_dict()
    spec = {k: (tuple(v.shape), v.dtype) for k, v in state.items()}
    pending: dict[str, dict[str, torch.Tensor]] = {}
    with SafetensorsWriter(out / "model.safetensors", spec, {"format": "pt"}) as writer:
        for key in spec:
            owner, _, leaf = key.rpartition(".")
            if owner in modules:
                if owner not in pending:
                    from kmed.llm.compression.arch import get_module

                    pending[owner] = _quantized_tensors(modules[owner], get_module(model, owner), owner, seed, group_size)
                writer.write(key, pending[owner].pop(leaf))
                if not pending[owner]:
                    del pending[owner]
            else:
                writer.write(key, _random_dense(spec[key][0], key, seed, spec[key][1]))
    config.save_pretrained(out)
    if scheme:
        write_manifest(out, config.model_type, scheme, group_size, modules, skipped, {"weights_origin": "random (synthetic benchmark)"})
    (out / "kmed_synthetic.json").write_text(json.dumps({"seed": seed, "std": STD, "scheme": scheme, "dtype": str(dtype)}), encoding="utf-8")
    return out
