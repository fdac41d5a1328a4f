"""``HFGenerator``: any transformers causal LM, with an optional LoRA adapter and quantized load.

    kmed ask "속이 쓰려요" --model models/polyglot-ko-1.3b --adapter models/kmed-lora --quantize nf4

    gen = HFGenerator("models/polyglot-ko-1.3b", adapter="models/kmed-lora")
    for piece in gen.stream(request): print(piece, end="", flush=True)

Loads lazily (``warm_up()``, or the first call) and reports time to first token. Greedy answers
from a Gemma 3 model are decoded by ``kmed.llm.gemma_decode`` (1.6x transformers' ``generate`` on 2
cores; ``decoder="transformers"`` turns it off). On CPU, a plain or int8 Gemma folder is then read by
``kmed.llm.gemma_native`` without building transformers' model at all (load and memory: see
docs/benchmarks.md). Everything else streams from ``generate`` through ``TextIteratorStreamer``.
Quantized loads: ``int8``/``nf4`` through bitsandbytes, or a folder written by ``kmed compress`` (it
holds ``kmed_quantization.json``), loaded by ``kmed.llm.compression.quantize.load_quantized``. Every
load failure is a ``ModelLoadError`` in Korean that names the fix; ``kmed.llm.hf_source`` checks the
model folder and loads the tokenizer.
"""

from __future__ import annotations

import importlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from kmed.errors import ModelLoadError
from kmed.llm.base import MODEL_CONTEXT_PASSAGES, GenerationRequest, StreamedGenerator
from kmed.llm.hf_source import KMED_QUANT_MANIFEST, check_model_source, load_tokenizer
from kmed.llm.prompts import AnswerFilter, build_prompt, cited_numbers, filter_stream

QUANTIZE_CHOICES = ("int8", "nf4")
# "auto": kmed's own greedy decoder for Gemma 3 (kmed.llm.gemma_decode) where the model and the
# settings allow it, else transformers' generate; "transformers": always generate.
DECODERS = ("auto", "transformers")
def _transformers_version() -> str:
    import transformers

    return transformers.__version__


class _TimedStreamer:
    """A ``TextIteratorStreamer`` that notes when the first new token arrives."""

    def __new__(cls, tokenizer, **kwargs):
        from transformers import TextIteratorStreamer

        class Timed(TextIteratorStreamer):
            first_token_at: float | None = None

            def put(self, value):
                if self.first_token_at is None and not (self.skip_prompt and self.next_tokens_are_prompt):
                    self.first_token_at = time.perf_counter()
                super().put(value)

        return Timed(tokenizer, **kwargs)


class HFGenerator(StreamedGenerator):
    """Grounded answers from a transformers causal LM (GPT-NeoX, LLaMA, and any other it supports)."""

    name = "hf"

    def __init__(
        self,
        model: str | Path,
        adapter: str | Path | None = None,
        quantize: str | None = None,
        tokenizer: str | Path | None = None,
        device: str | None = None,
        dtype: str | None = None,
        max_prompt_tokens: int | None = None,
        temperature: float = 0.0,
        repetition_penalty: float = 1.1,
        stream_timeout_s: float | None = 300.0,
        decoder: str = "auto",
        context_passages: int | None = MODEL_CONTEXT_PASSAGES,
        **generation_kwargs,
    ):
        if quantize is not None and quantize not in QUANTIZE_CHOICES:
            raise ModelLoadError(f"양자화 방식 '{quantize}'은(는) 지원하지 않아요.",
                                 f"--quantize는 {' 또는 '.join(QUANTIZE_CHOICES)}만 쓸 수 있어요.")
        self.source = check_model_source(str(model))
        self.adapter = Path(adapter).expanduser() if adapter else None
        if self.adapter is not None and not (self.adapter / "adapter_config.json").is_file():
            raise ModelLoadError(
                f"어댑터 폴더 '{adapter}'에 adapter_config.json이 없어요.",
                "kmed train lora --out DIR 로 만든 폴더(또는 peft save_pretrained 폴더)를 --adapter에 주세요.",
            )
        self.quantize = quantize
        self.tokenizer_source = tokenizer
        self.device = device
        self.dtype = dtype
        self.max_prompt_tokens = max_prompt_tokens
        if context_passages is not None and context_passages < 1:
            raise ModelLoadError(f"참고 문단 수는 1 이상이어야 해요: {context_passages}", "context_passages 에 1 이상의 수를 주세요.")
        self.context_passages = context_passages
        self.temperature = temperature
        self.repetition_penalty = repetition_penalty
        self.stream_timeout_s = stream_timeout_s
        self.generation_kwargs = generation_kwargs
        if decoder not in DECODERS:
            raise ModelLoadError(f"알 수 없는 디코더예요: {decoder!r}",
                                 f"{' 또는 '.join(DECODERS)} 중에서 고르세요.")
        self.decoder = decoder
        self._fast = None  # a GemmaDecoder when the model allows it (warm_up)
        self._eos_ids: set[int] | None = None  # the ids that end an answer on the kmed decoder (_stop_ids)
        self.model = None
        self.tokenizer = None
        self._lock = threading.Lock()

    # ---- loading --------------------------------------------------------------------------

    def warm_up(self) -> None:
        if self.model is not None:
            return
        import torch

        self.device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
        plain = not self.adapter and not self.quantize and not self.dtype
        if self._greedy_kmed() and self.device == "cpu" and plain and isinstance(self.source, Path):
            from kmed.llm.gemma_decode import GemmaDecoder
            from kmed.llm.gemma_native import load_native

            native, _ = load_native(self.source)  # None for anything but a plain or int8 Gemma 3 folder
            if native is not None:
                self.tokenizer = self._load_tokenizer()
                self.model, self._fast = native, GemmaDecoder(native)
                return
        if isinstance(self.source, Path) and (self.source / KMED_QUANT_MANIFEST).is_file():
            model, tokenizer = self._load_kmed_quantized()
            own = tokenizer is not None and not self.tokenizer_source
            self.tokenizer = tokenizer if own else self._load_tokenizer()
        else:
            self.tokenizer = self._load_tokenizer()
            model = self._load_transformers_model()
        if self.adapter is not None:
            model = self._attach_adapter(model)
        self.model = model.eval()
        if self._greedy_kmed():
            from kmed.llm.gemma_decode import GemmaDecoder

            self._fast = GemmaDecoder.for_model(self.model)

    def _greedy_kmed(self) -> bool:
        """Whether answers may come from kmed's Gemma decoder: greedy, no extra generate() settings."""
        return self.decoder == "auto" and self.temperature == 0 and not self.generation_kwargs

    def _load_tokenizer(self):
        return load_tokenizer(self.source, self.adapter, self.tokenizer_source)

    def _load_transformers_model(self):
        import torch
        from transformers import AutoConfig, AutoModelForCausalLM
        from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING

        try:
            config = AutoConfig.from_pretrained(str(self.source))
        except ValueError as exc:
            if "does not recognize this architecture" in str(exc):
                raise ModelLoadError(
                    f"모델 '{self.source}'의 구조를 이 transformers({_transformers_version()})가 모르는 구조예요.",
                    "pip install -U transformers 로 올리거나, GPT-NeoX(Polyglot-Ko, KULLM)·LLaMA 계열 모델을 쓰세요.",
                ) from exc
            raise ModelLoadError(
                f"모델 '{self.source}'의 설정을 읽지 못했어요: {str(exc).splitlines()[0]}", "config.json을 확인하세요."
            ) from exc
        except OSError as exc:
            raise ModelLoadError(
                f"모델 '{self.source}'의 설정을 읽지 못했어요: {str(exc).splitlines()[0]}",
                "경로를 확인하세요. 허브 모델은 먼저 받아 두고(huggingface-cli download) 폴더 경로를 주세요.",
            ) from exc
        if type(config) not in MODEL_FOR_CAUSAL_LM_MAPPING:
            raise ModelLoadError(
                f"'{config.model_type}' 구조는 문장 생성(causal LM) 모델이 아니라서 쓸 수 없어요.",
                "GPT-NeoX(Polyglot-Ko, KULLM), LLaMA, Gemma 3 계열 같은 causal LM을 주세요.",
            )
        kwargs: dict = {}
        if self.quantize:
            kwargs["quantization_config"] = self._bnb_config()
            kwargs["device_map"] = "auto" if self.device == "cuda" else "cpu"
        if self.dtype:
            kwargs["dtype"] = getattr(torch, self.dtype)
        elif self.device != "cpu":
            kwargs["dtype"] = "auto"  # keep the checkpoint's fp16/bf16 on GPU; CPU stays fp32
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # no "Loading weights" bar above a consultation
        try:
            model = AutoModelForCausalLM.from_pretrained(str(self.source), **kwargs)
        except (OSError, ValueError, ImportError) as exc:
            raise ModelLoadError(
                f"모델 가중치를 읽지 못했어요 ({self.source}): {str(exc).splitlines()[0]}",
                "폴더에 model.safetensors(또는 pytorch_model.bin)가 있는지 확인하세요.",
            ) from exc
        if not self.quantize:
            model.to(self.device)
        return model

    def _bnb_config(self):
        import torch
        from transformers import BitsAndBytesConfig

        try:
            importlib.import_module("bitsandbytes")
        except ImportError as exc:
            raise ModelLoadError(
                f"--quantize {self.quantize}에는 bitsandbytes가 필요해요.", "pip install 'kmed[quant]'"
            ) from exc
        if self.device == "cuda":
            try:
                importlib.import_module("accelerate")
            except ImportError as exc:
                raise ModelLoadError("GPU에서 양자화해 읽으려면 accelerate가 필요해요.", "pip install accelerate") from exc
        if self.quantize == "int8":
            return BitsAndBytesConfig(load_in_8bit=True)
        compute = torch.bfloat16 if self.device == "cuda" else torch.float32
        return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                  bnb_4bit_compute_dtype=compute)

    def _load_kmed_quantized(self):
        try:
            module = importlib.import_module("kmed.llm.compression.quantize")
            load_quantized = module.load_quantized
        except (ImportError, AttributeError) as exc:
            raise ModelLoadError(
                f"'{self.source}'은(는) kmed compress로 만든 양자화 체크포인트인데, 이 설치에는 불러오는 코드가 없어요.",
                "kmed를 최신으로 설치하거나, 원래 모델 폴더를 --quantize int8과 함께 쓰세요.",
            ) from exc
        if self.quantize:
            raise ModelLoadError("이미 양자화된 체크포인트라서 --quantize를 함께 쓸 수 없어요.", "--quantize를 빼고 실행하세요.")
        loaded = load_quantized(self.source)  # (model, tokenizer or None); a bare model is accepted too
        model, tokenizer = loaded if isinstance(loaded, tuple) else (loaded, None)
        if tokenizer is not None and tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        return model, tokenizer

    def _attach_adapter(self, model):
        try:
            from peft import PeftModel
        except ImportError as exc:
            raise ModelLoadError("--adapter에는 peft가 필요해요.", "pip install 'kmed[lora]'") from exc
        try:
            return PeftModel.from_pretrained(model, str(self.adapter))
        except (ValueError, KeyError, RuntimeError) as exc:
            raise ModelLoadError(
                f"어댑터 '{self.adapter}'가 이 기본 모델과 맞지 않아요: {str(exc).splitlines()[0]}",
                "어댑터를 학습할 때 쓴 기본 모델을 --model로 주세요 (어댑터 폴더의 kmed_adapter.json에 적혀 있어요).",
            ) from exc

    # ---- generation -----------------------------------------------------------------------

    def _prompt_budget(self, request: GenerationRequest) -> int | None:
        if self.max_prompt_tokens is not None:
            return self.max_prompt_tokens
        limit = getattr(self.model.config, "max_position_embeddings", None)
        return None if limit is None else max(64, limit - request.max_new_tokens)

    def _stream(self, request: GenerationRequest, stats: dict) -> Iterator[str]:
        self.warm_up()
        start = time.perf_counter()
        prompt = build_prompt(request, self.tokenizer, self._prompt_budget(request))
        encoded = self.tokenizer(prompt.text, return_tensors="pt",
                                 add_special_tokens=not prompt.chat_template)
        encoded = {k: v.to(self.model.device) for k, v in encoded.items()
                   if k in ("input_ids", "attention_mask")}
        prompt_len = encoded["input_ids"].shape[1]
        timing: dict = {}
        if self._fast is not None:
            from kmed.llm.gemma_decode import stream_text

            prompt_ids = encoded["input_ids"][0].tolist()
            pieces = stream_text(self._fast, self.tokenizer, prompt_ids, request.max_new_tokens,
                                 self._stop_ids(), self.repetition_penalty, timing)
        else:
            pieces = self._transformers_pieces(encoded, request, prompt, timing)
        emitted: list[str] = []
        with self._lock:
            try:
                yield from filter_stream(pieces, AnswerFilter(prompt.numbers, prompt.stop_strings), emitted)
            finally:
                pieces.close()  # a caller that stops reading early also stops the model
        text = "".join(emitted)
        first = timing.get("first_token_at")
        stats.update(
            text=text,
            ttft_s=(first - start) if first else None,
            total_s=time.perf_counter() - start,
            prompt_tokens=prompt_len,
            new_tokens=int(timing.get("new_tokens", 0)),
            metadata={
                "generator": self.name,
                "decoder": "kmed-gemma" if self._fast is not None else "transformers",
                "model": str(self.source),
                "adapter": str(self.adapter) if self.adapter else None,
                "quantize": self.quantize,
                "context_numbers": sorted(prompt.numbers),
                "dropped_context": prompt.dropped,
                "context_truncated": prompt.truncated,
                "cited": cited_numbers(text),
            },
        )

    def _stop_ids(self) -> set[int]:
        """The model's end-of-answer ids and the tokenizer's, read once into a set of our own."""
        if self._eos_ids is None:
            eos = getattr(self.model, "eos_token_ids", None)  # the native load reads them from the folder
            if eos is None:
                eos = self.model.generation_config.eos_token_id
            ids = {eos} if isinstance(eos, int) else set(eos or ())  # a copy: the model's set stays as it is
            self._eos_ids = ids | ({self.tokenizer.eos_token_id} - {None})
        return self._eos_ids

    def _transformers_pieces(self, encoded: dict, request: GenerationRequest, prompt,
                             timing: dict) -> Iterator[str]:
        """Text pieces from ``generate`` running in a thread; closing the iterator cancels it."""
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList

        streamer = _TimedStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True,
                                  timeout=self.stream_timeout_s)
        cancel = threading.Event()

        class Cancelled(StoppingCriteria):
            def __call__(self, input_ids, scores, **kwargs):
                stop = cancel.is_set()
                return torch.full((input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device)

        kwargs = dict(
            **encoded,
            max_new_tokens=request.max_new_tokens,
            streamer=streamer,
            do_sample=self.temperature > 0,
            repetition_penalty=self.repetition_penalty,
            pad_token_id=self.tokenizer.pad_token_id,
            stopping_criteria=StoppingCriteriaList([Cancelled()]),
        )
        if self.temperature > 0:
            kwargs["temperature"] = self.temperature
        if prompt.stop_strings:
            kwargs.update(stop_strings=prompt.stop_strings, tokenizer=self.tokenizer)
        kwargs.update(self.generation_kwargs)
        outcome: dict = {}

        def run() -> None:
            try:
                with torch.inference_mode():
                    outcome["output"] = self.model.generate(**kwargs)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
                outcome["error"] = exc
                streamer.end()

        thread = threading.Thread(target=run, daemon=True, name="kmed-hf-generate")
        thread.start()
        try:
            yield from streamer
        finally:
            cancel.set()
            thread.join()
            timing["first_token_at"] = streamer.first_token_at
            if "output" in outcome:
                timing["new_tokens"] = int(outcome["output"].shape[1] - encoded["input_ids"].shape[1])
        if "error" in outcome:
            raise outcome["error"]
