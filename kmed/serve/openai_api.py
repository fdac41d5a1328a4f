"""OpenAI-compatible ``POST /v1/chat/completions`` and ``GET /v1/models``: the whole agent, guardrails included.

    from openai import OpenAI
    client = OpenAI(base_url="http://127.0.0.1:8000/v1", api_key="unused-or-your---api-key")
    r = client.chat.completions.create(model="kmed", messages=[{"role": "user", "content": "어제부터 열이 나요"}])
    r.choices[0].message.content          # the answer, with [n] citations
    r.model_extra["kmed"]                 # {"citations", "triage", "entities", "departments", "refused", "kind"}

The API is stateless, as OpenAI's is: each request runs a fresh ``Session``. Earlier user messages
of the request are replayed as earlier turns (so "어제부터요" after "배가 아파요" is understood, and a
red flag raised earlier stays raised); assistant and system messages are not read, so a system
prompt cannot switch the guardrails off. Streaming sends the answer after the output guard has
verified it (never unverified model text), in ``delta.content`` pieces, then a final chunk with
``finish_reason`` and the ``kmed`` field, then ``[DONE]``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from kmed.agent.reply import Reply
from kmed.agent.session import Session
from kmed.serve.httpio import SSE_HEADERS, guard, pieces, read_json
from kmed.serve.problems import ApiError
from kmed.serve.service import Service

MODEL_ID = "kmed"
MAX_REPLAYED_TURNS = 20  # a longer history costs a turn each; the agent only needs the recent ones


def _content(message: dict) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # [{"type": "text", "text": "…"}, …]
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    raise ApiError("bad_field", detail="messages[].content 는 문자열이나 text 조각 목록이어야 해요")


def user_messages(data: dict, max_chars: int) -> list[str]:
    if data.get("model", MODEL_ID) != MODEL_ID:
        raise ApiError("unknown_model", detail=str(data.get("model"))[:40])
    messages = data.get("messages")
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        raise ApiError("bad_field", detail="messages 는 비어 있지 않은 객체 목록이어야 해요")
    if not isinstance(data.get("stream", False), bool):
        raise ApiError("bad_field", detail="stream 은 true 또는 false 여야 해요")
    texts = [_content(m) for m in messages if m.get("role") == "user"]
    if not texts:
        raise ApiError("no_user_message")
    if any(len(t) > max_chars for t in texts):
        raise ApiError("message_too_long", limit=max_chars)
    return texts[-(MAX_REPLAYED_TURNS + 1):]


def kmed_field(reply: Reply) -> dict:
    d = reply.to_dict()
    return {"citations": d["citations"], "triage": d["triage"], "entities": d["entities"],
            "departments": d["departments"], "refused": d["refused"], "kind": reply.kind}


def _complete(service: Service, texts: list[str]) -> Reply:
    """Runs in a worker thread: earlier user messages as earlier turns, then the answered one."""
    session = Session(service.require_ready())
    for earlier in texts[:-1]:
        session.ask(earlier)
    return service.run_session(session, texts[-1], None)


def add_openai_routes(app: FastAPI, service: Service) -> None:
    @app.get("/v1/models")
    async def models(request: Request) -> dict:
        guard(request, service)
        return {"object": "list", "data": [{"id": MODEL_ID, "object": "model", "created": 0, "owned_by": "kmed"}]}

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        guard(request, service)
        service.require_ready()
        data = await read_json(request, service.settings)
        texts = user_messages(data, service.settings.max_message_chars)
        completion_id = "chatcmpl-" + os.urandom(12).hex()
        created = int(time.time())
        if not data.get("stream", False):
            reply = await service.queue.run(_complete, service, texts)
            return JSONResponse({
                "id": completion_id, "object": "chat.completion", "created": created, "model": MODEL_ID,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": reply.answer},
                             "finish_reason": "stop"}],
                "kmed": kmed_field(reply),
            })
        future = service.queue.submit(_complete, service, texts)  # Busy → 503 before the stream starts

        def chunk(delta: dict, finish: str | None = None, **extra) -> bytes:
            body = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": MODEL_ID,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}
            return f"data: {json.dumps(body, ensure_ascii=False)}\n\n".encode()

        async def body() -> AsyncIterator[bytes]:
            yield chunk({"role": "assistant", "content": ""})
            try:
                reply = await future
            except ApiError as exc:
                yield f"data: {json.dumps(exc.body(), ensure_ascii=False)}\n\n".encode()
                return
            except Exception:  # noqa: BLE001 - logged by the service
                yield f"data: {json.dumps(ApiError('turn_failed').body(), ensure_ascii=False)}\n\n".encode()
                return
            for piece in pieces(reply.answer, service.settings.sse_chunk_chars):
                yield chunk({"content": piece})
            yield chunk({}, "stop", kmed=kmed_field(reply))
            yield b"data: [DONE]\n\n"

        return StreamingResponse(body(), media_type="text/event-stream", headers=SSE_HEADERS)
