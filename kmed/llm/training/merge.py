"""Fold a LoRA adapter into its base model, so compression and serving see one ordinary model.

    kmed train merge --adapter models/gemma-kmed-lora --out models/gemma-kmed-merged

The base is the one the adapter was trained on (its ``kmed_adapter.json`` or peft's
``adapter_config.json``), loaded in float32 whatever dtype training used, so the merged weights
lose nothing to rounding before ``kmed compress`` decides what to keep. The folder is written to a
temporary sibling and swapped in whole, with a manifest naming the base, the adapter and their
hashes.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from kmed.artifacts import atomic_folder, file_sha256, write_manifest
from kmed.errors import ConfigError, require_extra

ADAPTER_MANIFEST = "kmed_adapter.json"


def adapter_base(adapter: Path) -> str:
    """The base model path the adapter was trained on."""
    for name, key in ((ADAPTER_MANIFEST, "base_model"), ("adapter_config.json", "base_model_name_or_path")):
        path = adapter / name
        if path.is_file():
            try:
                base = json.loads(path.read_text(encoding="utf-8")).get(key)
            except ValueError as exc:
                raise ConfigError(f"'{path}'을(를) 읽을 수 없어요 ({exc}).", "kmed train lora 로 어댑터를 다시 만드세요.") from exc
            if base:
                return str(base)
    raise ConfigError(f"'{adapter}'은(는) LoRA 어댑터 폴더가 아니에요 (adapter_config.json 없음).",
                      "kmed train lora --out DIR 로 만든 폴더를 --adapter에 주세요.")


def merge_adapter(adapter: str | Path, out: str | Path, base: str | None = None, overwrite: bool = False) -> dict:
    adapter, out = Path(adapter), Path(out)
    if not adapter.is_dir():
        raise ConfigError(f"어댑터 폴더 '{adapter}'이(가) 없어요.", "kmed train lora --out DIR 로 먼저 학습하세요.")
    if out.exists() and not overwrite:
        raise ConfigError(f"'{out}'이(가) 이미 있어요.", "다른 --out을 주거나 --overwrite를 붙이세요.")
    base = base or adapter_base(adapter)
    if not Path(base).is_dir():
        raise ConfigError(f"기본 모델 '{base}'이(가) 없어요.", "--base로 어댑터를 학습한 기본 모델 폴더를 주세요.")
    require_extra("peft", "lora", "어댑터 병합")
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from kmed.llm.hf import load_tokenizer

    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    merged = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    tokenizer = load_tokenizer(Path(base), adapter)
    manifest = {
        "kind": "kmed_merged_model",
        "format_version": 1,
        "base_model": base,
        "base_config_sha256": file_sha256(Path(base) / "config.json"),
        "adapter": str(adapter),
        "adapter_weights_sha256": next((file_sha256(p) for p in sorted(adapter.glob("adapter_model.*"))), None),
        "parameters": sum(p.numel() for p in merged.parameters()),
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    with atomic_folder(out) as staged:
        merged.save_pretrained(staged)
        tokenizer.save_pretrained(staged)
        write_manifest(staged, manifest)
    return manifest
