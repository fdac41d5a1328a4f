"""``OpenAICompatibleGenerator``: answers from a vLLM, TGI or llama.cpp server over ``/v1/chat/completions``.

    vllm serve models/polyglot-ko-1.3b --port 8000          # or: llama-server -m model.gguf --port 8080
    kmed ask "속이 쓰려요" --model "openai:http://127.0.0.1:8000/v1#models/polyglot-ko-1.3b"

The server applies the model's chat template; kmed sends the grounded messages (system rules,
numbered context, question), streams the reply over server-sent events and removes citations to
passages it did not send. Only the standard library is used, so this path adds no dependency.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

from kmed.errors import ModelLoadError
from kmed.llm.base import GenerationRequest, StreamedGenerator
from kmed.llm.prompts import AnswerFilter, build_prompt, cited_numbers, filter_stream


def chat_completions_url(base_url: str) -> str:
    """``http://host:8000``, ``…/v1`` and ``…/v1/chat/completions`` all mean the same endpoint."""
    url = base_url.rstrip("/")
    if url.endswith("/chat/completions"):
        return url
    if not url.endswith("/v1"):
        url += "/v1"
    return url + "/chat/completions"


class OpenAICompatibleGenerator(StreamedGenerator):
    name = "openai_compat"

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        timeout_s: float = 120.0,
        temperature: float = 0.0,
        max_context_chars: int | None = 6000,
        stream_usage: bool = True,
    ):
        if not base_url.startswith(("http://", "https://")):
            raise ModelLoadError(f"서버 주소 '{base_url}'가 http:// 또는 https://로 시작하지 않아요.", "예: --model openai:http://127.0.0.1:8000/v1#모델이름")
        self.base_url = base_url
        self.url = chat_completions_url(base_url)
        self.model = model
        self.api_key = api_key or os.environ.get("KMED_OPENAI_API_KEY") or os.environ.get("OPENAI_API_KEY")
        self.timeout_s = timeout_s
        self.temperature = temperature
        # The server's tokenizer is unknown here: budget the prompt in characters (~1.5 per token).
        self.max_prompt_tokens = None if max_context_chars is None else int(max_context_chars / 1.5)
        self.stream_usage = stream_usage

    def _post(self, body: dict):
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream" if body.get("stream") else "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        request = urllib.request.Request(self.url, data=data, headers=headers, method="POST")
        try:
            return urllib.request.urlopen(request, timeout=self.timeout_s)  # noqa: S310 - the user's own server
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")[:300]
            if exc.code in (401, 403):
                raise ModelLoadError(f"서버가 인증을 거부했어요 (HTTP {exc.code}).", "API 키를 KMED_OPENAI_API_KEY 환경변수로 주세요.") from exc
            if exc.code == 404:
                raise ModelLoadError(
                    f"서버에서 '{self.url}' 또는 모델 '{self.model}'을(를) 찾지 못했어요 (HTTP 404): {detail}",
                    "주소가 /v1로 끝나는지, '#' 뒤 모델 이름이 서버의 /v1/models 목록과 같은지 확인하세요.",
                ) from exc
            raise ModelLoadError(f"서버가 오류를 돌려줬어요 (HTTP {exc.code}): {detail}", "서버 로그를 확인하세요.") from exc
        except urllib.error.URLError as exc:
            reason = exc.reason
            if isinstance(reason, ConnectionRefusedError):
                raise ModelLoadError(
                    f"{self.base_url}에 연결할 수 없어요 (연결 거부). 서버가 켜져 있지 않은 것 같아요.",
                    "서버를 먼저 띄우세요: vllm serve <모델> --port 8000  또는  llama-server -m model.gguf --port 8080",
                ) from exc
            raise ModelLoadError(f"{self.base_url}에 연결할 수 없어요: {reason}", "주소와 네트워크를 확인하세요.") from exc
        except TimeoutError as exc:
            raise ModelLoadError(f"{self.base_url} 서버가 {self.timeout_s:.0f}초 안에 답하지 않았어요.", "서버 상태를 확인하거나 timeout_s를 늘리세요.") from exc

    def _body(self, request: GenerationRequest, messages: list[dict], stream: bool) -> dict:
        body = {
            "model": self.model,
            "messages": messages,
            "max_tokens": request.max_new_tokens,
            "temperature": self.temperature,
            "stream": stream,
        }
        if stream and self.stream_usage:
            body["stream_options"] = {"include_usage": True}
        return body

    def _events(self, response) -> Iterator[dict]:
        """Parse server-sent events: ``data: {json}`` lines until ``data: [DONE]``."""
        try:
            for raw in response:
                line = raw.decode("utf-8").strip()
                if not line.startswith("data:"):
                    continue
                payload = line[5:].strip()
                if payload == "[DONE]":
                    return
                yield json.loads(payload)
        except TimeoutError as exc:
            raise ModelLoadError(f"{self.base_url} 서버가 생성 도중 {self.timeout_s:.0f}초 넘게 멈췄어요.", "서버 상태를 확인하거나 timeout_s를 늘리세요.") from exc

    def _stream(self, request: GenerationRequest, stats: dict) -> Iterator[str]:
        start = time.perf_counter()
        prompt = build_prompt(request, None, self.max_prompt_tokens)
        emitted: list[str] = []
        timing: dict = {"first_at": None, "usage": {}}

        def pieces() -> Iterator[str]:
            with self._post(self._body(request, prompt.messages, stream=True)) as response:
                for event in self._events(response):
                    if event.get("error"):
                        raise ModelLoadError(f"서버가 생성 중에 오류를 알렸어요: {event['error']}", "서버 로그를 확인하세요.")
                    timing["usage"] = event.get("usage") or timing["usage"]
                    for choice in event.get("choices") or []:
                        piece = (choice.get("delta") or {}).get("content") or ""
                        if piece and timing["first_at"] is None:
                            timing["first_at"] = time.perf_counter()
                        yield piece

        source = pieces()
        try:
            yield from filter_stream(source, AnswerFilter(prompt.numbers), emitted)
        finally:
            source.close()
        first_at, usage = timing["first_at"], timing["usage"]
        text = "".join(emitted)
        stats.update(
            text=text,
            ttft_s=None if first_at is None else first_at - start,
            total_s=time.perf_counter() - start,
            prompt_tokens=usage.get("prompt_tokens"),
            new_tokens=usage.get("completion_tokens"),
            metadata={
                "generator": self.name,
                "base_url": self.base_url,
                "model": self.model,
                "context_numbers": sorted(prompt.numbers),
                "dropped_context": prompt.dropped,
                "cited": cited_numbers(text),
            },
        )
