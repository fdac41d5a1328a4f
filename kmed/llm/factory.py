"""One place that turns ``--model`` / ``--adapter`` / ``--quantize`` into a ``Generator``.

    load_generator(None)                                             # ExtractiveGenerator (no weights)
    load_generator("models/polyglot-ko-1.3b", adapter="models/kmed-lora", quantize="nf4")
    load_generator("openai:http://127.0.0.1:8000/v1#models/polyglot-ko-1.3b")

Backends are imported only when chosen, so the default path never imports torch.
"""

from __future__ import annotations

from kmed.errors import ModelLoadError
from kmed.llm.base import Generator

OPENAI_PREFIX = "openai:"


def parse_openai_spec(spec: str) -> tuple[str, str]:
    """``openai:<base_url>#<model>`` → (base_url, model). The model part may be omitted for
    single-model servers such as llama.cpp (it is then sent as ``default``)."""
    rest = spec[len(OPENAI_PREFIX):]
    base_url, _, model = rest.partition("#")
    if not base_url:
        raise ModelLoadError(f"'{spec}'에 서버 주소가 없어요.", "예: --model openai:http://127.0.0.1:8000/v1#모델이름")
    return base_url, model or "default"


def load_generator(
    model: str | None,
    adapter: str | None = None,
    quantize: str | None = None,
    **kw,
) -> Generator:
    if model is None:
        if adapter or quantize:
            raise ModelLoadError("--adapter와 --quantize는 --model과 함께 써야 해요.", "--model <기본 모델 경로>를 주세요.")
        from kmed.llm.extractive import ExtractiveGenerator

        return ExtractiveGenerator(**kw)
    if model.startswith(OPENAI_PREFIX):
        if adapter or quantize:
            raise ModelLoadError(
                "서버 모델에는 --adapter와 --quantize를 쓸 수 없어요. 어댑터와 양자화는 서버 쪽에서 설정해요.",
                "예: vllm serve <기본 모델> --enable-lora --lora-modules kmed=<어댑터 폴더>",
            )
        from kmed.llm.openai_compat import OpenAICompatibleGenerator

        base_url, model_name = parse_openai_spec(model)
        return OpenAICompatibleGenerator(base_url, model_name, **kw)
    from kmed.llm.hf import HFGenerator

    return HFGenerator(model, adapter=adapter, quantize=quantize, **kw)
