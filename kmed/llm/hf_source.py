"""Where a transformers model comes from: its folder (or hub id) and its tokenizer.

    source = check_model_source("models/polyglot-ko-1.3b")   # Path, hub id str, or a ModelLoadError
    tokenizer = load_tokenizer(source, adapter=Path("models/kmed-lora"))

Every failure is a ``ModelLoadError`` in Korean that names the fix. ``kmed.llm.hf`` re-exports both.
"""

from __future__ import annotations

import re
from pathlib import Path

from kmed.errors import ModelLoadError

KMED_QUANT_MANIFEST = "kmed_quantization.json"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json", "spiece.model")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def _has_tokenizer(folder: Path) -> bool:
    return any((folder / name).is_file() for name in TOKENIZER_FILES)


def check_model_source(model: str) -> Path | str:
    """A local model folder as a Path, or a hub id as str; anything else is a ModelLoadError."""
    path = Path(model).expanduser()
    if path.is_dir():
        if (path / "config.json").is_file() or (path / KMED_QUANT_MANIFEST).is_file():
            return path
        final = path / "model"  # a `kmed compress --out` folder: its final model sits in model/
        if (final / "config.json").is_file() and (path / "manifest.json").is_file():
            return final
        if (path / "adapter_config.json").is_file():
            raise ModelLoadError(
                f"'{model}'은(는) 기본 모델이 아니라 LoRA 어댑터 폴더예요.",
                f"기본 모델과 함께 주세요: --model <기본 모델 경로> --adapter {model}",
            )
        raise ModelLoadError(
            f"'{model}' 폴더에 config.json이 없어서 모델로 읽을 수 없어요.",
            "save_pretrained()로 저장한 모델 폴더(config.json과 가중치 파일이 있는 곳)를 주세요.",
        )
    if path.is_file():
        gguf = path.suffix == ".gguf"
        hint = " GGUF 파일은 llama.cpp 서버로 띄운 뒤 --model openai:http://127.0.0.1:8080#모델 로 쓰세요." if gguf else ""
        raise ModelLoadError(f"'{model}'은(는) 파일이에요. 모델 폴더를 주세요.{hint}",
                             "config.json이 있는 폴더 경로를 --model에 주세요.")
    if _HUB_ID.match(model) and not model.startswith((".", "~")):
        return model
    raise ModelLoadError(f"모델 경로 '{model}'을(를) 찾을 수 없어요.",
                         "경로를 확인하거나, 허브 id(예: EleutherAI/polyglot-ko-1.3b)를 주세요.")


def load_tokenizer(source: Path | str, adapter: Path | None = None, tokenizer: str | Path | None = None):
    """The tokenizer for a model: an explicit one, else the adapter's (it matches training), else the
    model's."""
    from transformers import AutoTokenizer

    candidates = [Path(tokenizer)] if tokenizer else []
    if adapter is not None and _has_tokenizer(Path(adapter)):
        candidates.append(Path(adapter))
    candidates.append(source)
    for candidate in candidates:
        if isinstance(candidate, Path) and not _has_tokenizer(candidate):
            continue  # transformers v5 would silently build an empty tokenizer here
        try:
            loaded = AutoTokenizer.from_pretrained(str(candidate))
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"토크나이저를 읽지 못했어요 ({candidate}): {exc}",
                                 "tokenizer.json이 있는 폴더를 --tokenizer로 주세요.") from exc
        if loaded.pad_token_id is None:
            loaded.pad_token = loaded.eos_token
        return loaded
    raise ModelLoadError(
        f"'{source}'에 토크나이저 파일(tokenizer.json 등)이 없어요.",
        "기본 모델의 토크나이저를 같은 폴더에 저장하세요: AutoTokenizer.from_pretrained(<원래 모델>).save_pretrained(<폴더>)",
    )
