"""LangChain chat model over any kmed ``Generator`` (extractive, HF or OpenAI-compatible).

    from kmed.llm.extractive import ExtractiveGenerator
    from kmed.llm.langchain_chat import KmedChatModel
    chat = KmedChatModel(generator=ExtractiveGenerator())
    chat.invoke([SystemMessage("[1] 제목\\n본문…"), HumanMessage("질문")])

Numbered grounding context may be passed as ``context=[ContextPassage, …]`` (``bind`` or invoke
kwargs) or as a system message whose lines look like ``[n] title: text``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from kmed.errors import require_extra

require_extra("langchain_core", "langchain", "LangChain 채팅 모델")  # an optional extra: kmed[langchain]

from langchain_core.language_models.chat_models import BaseChatModel  # noqa: E402
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage, SystemMessage  # noqa: E402
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult  # noqa: E402

from kmed.llm.base import ContextPassage, GenerationRequest  # noqa: E402

_CONTEXT_LINE = re.compile(r"^\[(\d+)\]\s*(?:(.+?):\s+)?(.+)$")


def _request(messages: list[BaseMessage], context: list[ContextPassage] | None, intent: str | None) -> GenerationRequest:
    question = next((m.content for m in reversed(messages) if isinstance(m, HumanMessage)), "")
    history = [{"role": "user" if isinstance(m, HumanMessage) else "assistant", "content": m.content}
               for m in messages[:-1] if not isinstance(m, SystemMessage)]
    if context is None:
        context = []
        for message in messages:
            if isinstance(message, SystemMessage):
                for line in str(message.content).splitlines():
                    if match := _CONTEXT_LINE.match(line.strip()):
                        number, title, text = match.groups()
                        context.append(ContextPassage(int(number), title or "", text))
    return GenerationRequest(question=str(question), context=context, history=history, intent=intent)


class KmedChatModel(BaseChatModel):
    generator: Any

    @property
    def _llm_type(self) -> str:
        return f"kmed-{getattr(self.generator, 'name', 'generator')}"

    def _generate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
        request = _request(messages, kwargs.get("context"), kwargs.get("intent"))
        result = self.generator.generate(request)
        message = AIMessage(content=result.text, response_metadata={"ttft_s": result.ttft_s, **result.metadata})
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(self, messages, stop=None, run_manager=None, **kwargs) -> Iterator[ChatGenerationChunk]:
        request = _request(messages, kwargs.get("context"), kwargs.get("intent"))
        for piece in self.generator.stream(request):
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=piece))
            if run_manager:
                run_manager.on_llm_new_token(piece, chunk=chunk)
            yield chunk
