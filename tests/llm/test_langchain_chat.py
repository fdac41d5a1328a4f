"""The LangChain chat model wraps any Generator: invoke, stream, and numbered context from a system message."""

from __future__ import annotations

from langchain_core.messages import HumanMessage, SystemMessage

from kmed.llm.base import ContextPassage
from kmed.llm.extractive import ExtractiveGenerator
from kmed.llm.langchain_chat import KmedChatModel

CONTEXT = "[1] 역류성 식도염 · 치료: 위산을 줄이는 약을 보통 4~8주 정도 써요. 식후 바로 눕지 않아요."


def test_invoke_cites_context_from_a_system_message():
    chat = KmedChatModel(generator=ExtractiveGenerator())
    reply = chat.invoke([SystemMessage(CONTEXT), HumanMessage("역류성 식도염 치료는 어떻게 해요?")])
    assert "[1]" in reply.content and "4~8주" in reply.content


def test_stream_and_explicit_context_in_an_lcel_chain():
    from langchain_core.runnables import RunnableLambda

    chat = KmedChatModel(generator=ExtractiveGenerator())
    context = [ContextPassage(1, "역류성 식도염 · 치료", "위산을 줄이는 약을 보통 4~8주 정도 써요.")]
    pieces = list(chat.stream([HumanMessage("역류성 식도염 치료 기간은?")], context=context))
    assert "".join(p.content for p in pieces).count("[1]") >= 1
    chain = RunnableLambda(lambda q: [HumanMessage(q)]) | chat.bind(context=context) | RunnableLambda(lambda m: m.content)
    assert "[1]" in chain.invoke("역류성 식도염 치료 기간은?")
