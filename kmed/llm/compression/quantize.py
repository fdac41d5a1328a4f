"""Quantize a causal LM, save it in quantized form, and load it without ever materialising fp32.

    from kmed.llm.compression.quantize import quantize_model, save_quantized, load_quantized
    quantize_model(model, scheme="int4", group_size=64)       # in place; returns {module: kind}
    save_quantized(model, "models/kb-int4", tokenizer)        # model.safetensors + kmed_quantization.json
    model, tokenizer = load_quantized("models/kb-int4")       # meta skeleton, weights streamed in

Schemes (CPU): ``int4`` (decoder projections 4-bit groupwise, head int8, bf16 activations),
``int8`` (fbgemm dynamic int8 everywhere, fp32 activations quantized to int8 on the fly) and
``int8_wo`` (int8 weights only, bf16 activations: for models with activation outliers such as
Gemma 3, where quantizing the activations costs +42 % perplexity and weight-only int8 +1.6 %). On a GPU, ``bnb_int8`` and
``bnb_nf4`` use bitsandbytes through transformers' own loader.

A folder with ``kmed_quantization.json`` is what ``HFGenerator`` recognises and loads through
``load_quantized``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch
from torch import nn

from kmed.errors import ConfigError, ModelLoadError
from kmed.llm.compression.arch import (
    decode_attention,
    decoder_linear_names,
    family_of,
    get_module,
    set_module,
)
from kmed.llm.compression.ckpt import iter_safetensors, save_state_dict
from kmed.llm.compression.qlinear import QUANT_MODULES, Int4WeightOnlyLinear, Int8Embedding, int4_supported

MANIFEST = "kmed_quantization.json"
WEIGHTS = "model.safetensors"
FORMAT = "kmed-quantized"
COMPUTE_DTYPE = {"int4": torch.bfloat16, "int8": torch.float32, "int8_wo": torch.bfloat16}


def is_quantized_dir(path: str | Path) -> bool:
    return (Path(path) / MANIFEST).is_file()


def plan_modules(model: nn.Module, scheme: str, group_size: int = 64, quantize_embeddings: bool = True) -> tuple[dict, list]:
    """Which module becomes which quantized kind: ``({name: kind}, [names kept unquantized])``."""
    if scheme.startswith("bnb_"):
        raise ConfigError(f"{scheme} 는 메모리 안의 모델이 아니라 저장된 폴더에서 만들어요.", "quantize_bnb(base_dir, out_dir, scheme)를 쓰세요.")
    if scheme not in COMPUTE_DTYPE:
        raise ConfigError(f"알 수 없는 양자화 방식이에요: {scheme!r}", "int4, int8, int8_wo, bnb_int8, bnb_nf4 중 하나를 쓰세요.")
    fam = family_of(model)
    modules: dict[str, str] = {}
    skipped: list[str] = []
    for name in decoder_linear_names(model):
        if scheme == "int8":
            modules[name] = "int8_dyn"
        elif scheme == "int8_wo":
            modules[name] = "int8_wo"
        elif int4_supported(get_module(model, name), group_size):
            modules[name] = "int4_wo"
        else:
            skipped.append(name)  # a shape the int4 kernel cannot take: kept in bf16
    if isinstance(get_module(model, fam.head), nn.Linear):
        # int4 scheme: the head stays 8-bit, where 4 bits would cost the most quality.
        modules[fam.head] = "int8_dyn" if scheme == "int8" else "int8_wo"
    if quantize_embeddings:
        modules[f"{fam.backbone}.{fam.embed}"] = "int8_embedding"
    return modules, skipped


def quantize_model(model: nn.Module, scheme: str = "int4", group_size: int = 64, quantize_embeddings: bool = True) -> dict:
    """Replace the model's projections in place; returns the manifest's ``modules`` map."""
    modules, skipped = plan_modules(model, scheme, group_size, quantize_embeddings)
    for name, kind in modules.items():
        old = get_module(model, name)
        if kind == "int4_wo":
            new = Int4WeightOnlyLinear.from_linear(old, group_size)
        elif kind == "int8_embedding":
            new = Int8Embedding.from_embedding(old)
        else:
            new = QUANT_MODULES[kind].from_linear(old)
        set_module(model, name, new)
    model.to(COMPUTE_DTYPE[scheme])  # norms, biases, any skipped projection
    for name, module in list(model.named_modules()):
        if "Rotary" in type(module).__name__:  # keep RoPE frequencies in fp32, as a fresh load does
            set_module(model, name, type(module)(config=model.config))
    if hasattr(model, "set_attn_implementation"):
        model.set_attn_implementation(decode_attention(model.config))  # as load_quantized builds it: same numbers after saving
    # The head and embedding are now separate quantized tensors, even if the base tied them.
    model.config.tie_word_embeddings = False
    model._kmed_quant = {"scheme": scheme, "group_size": group_size, "modules": modules, "skipped": skipped}
    return modules


def save_quantized(model: nn.Module, out: str | Path, tokenizer=None, extra: dict | None = None) -> Path:
    """Write ``model.safetensors`` (quantized tensors as stored), config, tokenizer and the manifest."""
    info = getattr(model, "_kmed_quant", None)
    if info is None:
        raise ValueError("quantize_model(model, …) first")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_state_dict(out / WEIGHTS, state, {"format": "pt"})
    model.config.save_pretrained(out)
    if getattr(model, "generation_config", None) is not None:
        # A preallocated KV cache: HF's default concatenates every layer's cache at every step.
        model.generation_config.cache_implementation = "static"
        model.generation_config.save_pretrained(out)
    if tokenizer is not None:
        tokenizer.save_pretrained(out)
    write_manifest(out, model.config.model_type, info["scheme"], info["group_size"], info["modules"], info["skipped"], extra)
    return out


def write_manifest(out: Path, model_type: str, scheme: str, group_size: int, modules: dict, skipped=(), extra=None) -> None:
    import transformers

    manifest = {
        "format": FORMAT,
        "version": 1,
        "model_type": model_type,
        "scheme": scheme,
        "group_size": group_size,
        "compute_dtype": str(COMPUTE_DTYPE.get(scheme, torch.bfloat16)).removeprefix("torch."),
        "weights": WEIGHTS,
        "modules": modules,
        "skipped": list(skipped),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        **(extra or {}),
    }
    (Path(out) / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")


def empty_module(kind: str, old: nn.Module, group_size: int, dtype: torch.dtype) -> nn.Module:
    """A quantized module on the meta device with the shapes ``old`` implies."""
    if kind == "int8_embedding":
        return Int8Embedding(old.num_embeddings, old.embedding_dim, dtype, old.padding_idx, device="meta",
                             embed_scale=getattr(old, "scalar_embed_scale", 1.0))
    bias = getattr(old, "bias", None) is not None
    if kind == "int4_wo":
        return Int4WeightOnlyLinear(old.in_features, old.out_features, bias, group_size, device="meta")
    return QUANT_MODULES[kind](old.in_features, old.out_features, bias, device="meta")


def load_quantized(path: str | Path, with_tokenizer: bool = True):
    """Load a ``kmed compress`` int4/int8 folder: ``(model, tokenizer or None)``, ready for ``generate``.

    The model skeleton is built on the meta device (no memory), every quantized module is created
    empty, and tensors are streamed from disk straight into place; each projection is packed for its
    kernel as soon as its tensors arrive and the portable copy is dropped.
    """
    path = Path(path)
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise ModelLoadError(f"{path} 에 {MANIFEST} 가 없어서 kmed 양자화 모델이 아니에요.", "kmed compress 로 만든 폴더를 주세요.")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    if manifest.get("format") != FORMAT:
        raise ModelLoadError(f"{manifest_path}: 알 수 없는 형식 {manifest.get('format')!r}")
    scheme = manifest["scheme"]
    if scheme.startswith("bnb_"):
        return _load_bnb(path, with_tokenizer)
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(path)
    family_of(config)
    dtype = getattr(torch, manifest["compute_dtype"])
    with torch.device("meta"):
        # The attention kernel that decodes fastest on CPU for this shape (arch.decode_attention).
        model = AutoModelForCausalLM.from_config(config, dtype=dtype, attn_implementation=decode_attention(config))
    for name, kind in manifest["modules"].items():
        set_module(model, name, empty_module(kind, get_module(model, name), manifest["group_size"], dtype))
    quant_names = set(manifest["modules"])
    pending: dict[str, int] = {}
    for name, module in model.named_modules():
        if name in quant_names:
            pending[name] = sum(1 for b in module._buffers.values() if b is not None)
    for key, tensor in iter_safetensors(path / manifest.get("weights", WEIGHTS)):
        owner, _, leaf = key.rpartition(".")
        module = get_module(model, owner) if owner else model
        if leaf in module._parameters:
            module._parameters[leaf] = nn.Parameter(tensor, requires_grad=False)
        elif leaf in module._buffers:
            module._buffers[leaf] = tensor
        else:
            raise ModelLoadError(f"{path}: 체크포인트의 {key} 가 모델에 없어요.", "같은 kmed/transformers 버전으로 다시 압축해 주세요.")
        if owner in pending:
            pending[owner] -= 1
            if pending[owner] == 0:
                module.pack(drop_portable=True)
    _materialise_leftovers(model, config)
    if "int4_wo" in manifest["modules"].values():
        from kmed.llm.compression import prefill

        prefill.available()  # compile the prompt helper now (once per machine, ~20 s), not on the first prompt
    release_freed_memory()
    model.eval()
    model.requires_grad_(False)
    try:
        from transformers import GenerationConfig

        model.generation_config = GenerationConfig.from_pretrained(path)
    except OSError:
        pass
    tokenizer = _load_tokenizer(path) if with_tokenizer else None
    return model, tokenizer


def release_freed_memory() -> None:
    """Hand freed heap back to the OS (glibc keeps packing temporaries otherwise); no-op elsewhere."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _materialise_leftovers(model: nn.Module, config) -> None:
    """Rebuild non-persistent buffers (rotary frequencies) that the checkpoint never held."""
    for name, module in list(model.named_modules()):
        meta = [k for k, v in list(module._parameters.items()) + list(module._buffers.items()) if v is not None and v.is_meta]
        if not meta:
            continue
        if "Rotary" in type(module).__name__:
            set_module(model, name, type(module)(config=config))
        elif meta == ["embed_scale"] and hasattr(module, "scalar_embed_scale"):  # Gemma's √hidden factor
            module.embed_scale = torch.tensor(module.scalar_embed_scale, dtype=torch.float32)
        else:
            raise ModelLoadError(f"체크포인트에 {name}.{meta[0]} 가 없어요.", "kmed compress 로 다시 만들어 주세요.")


def _load_tokenizer(path: Path):
    if not any((path / f).is_file() for f in ("tokenizer.json", "tokenizer_config.json")):
        return None
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path)


# ---- bitsandbytes (GPU) -------------------------------------------------------------------------


def require_cuda(scheme: str) -> None:
    if not torch.cuda.is_available():
        raise ConfigError(
            f"{scheme} (bitsandbytes)는 GPU가 필요한데 이 컴퓨터에는 CUDA GPU가 없어요.",
            "CPU에서는 레시피의 quantize.scheme 을 int4 또는 int8 로 바꾸세요 (configs/compress/int4.yaml).",
        )


def quantize_bnb(base: str | Path, out: str | Path, scheme: str) -> Path:
    """Load ``base`` through bitsandbytes on the GPU and save it quantized (transformers format)."""
    require_cuda(scheme)
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

    if scheme == "bnb_int8":
        qconfig = BitsAndBytesConfig(load_in_8bit=True)
    else:
        qconfig = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16)
    model = AutoModelForCausalLM.from_pretrained(base, quantization_config=qconfig, device_map="cuda")
    out = Path(out)
    model.save_pretrained(out)
    try:
        AutoTokenizer.from_pretrained(base).save_pretrained(out)
    except (OSError, ValueError):
        pass
    write_manifest(out, model.config.model_type, scheme, 64, {}, (), {"loader": "transformers+bitsandbytes"})
    return out


def _load_bnb(path: Path, with_tokenizer: bool):
    manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    require_cuda(manifest["scheme"])
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(path, device_map="cuda")
    return model.eval(), (_load_tokenizer(path) if with_tokenizer else None)
