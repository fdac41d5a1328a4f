"""The FastAPI app: consultation sessions over HTTP and SSE, health, metrics and the web page.

    from kmed import Assistant
    from kmed.serve import ServeSettings, create_app
    app = create_app(Assistant.load(), ServeSettings(db_path="sessions.sqlite3"))
    # uvicorn.run(app, host="127.0.0.1", port=8000)   — or simply: kmed serve

Endpoints:
    POST   /v1/sessions                      → 201 {"session_id": …}
    POST   /v1/sessions/{id}/messages        {"text": …} → reply.to_dict(); SSE with Accept: text/event-stream
    GET    /v1/sessions/{id}                 → stored (redacted) history
    DELETE /v1/sessions/{id}                 → 204
    GET    /v1/passages/{id}                 → the cited passage and its sources (for the web page)
    POST   /v1/chat/completions, GET /v1/models   (OpenAI-compatible; kmed.serve.openai_api)
    GET    /healthz  /readyz  /metrics  /   (web page)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from kmed.serve.httpio import (
    SSE_HEADERS,
    RequestContext,
    guard,
    message_text,
    pieces,
    read_json,
    sse,
    wants_stream,
)
from kmed.serve.limits import Busy
from kmed.serve.metrics import Metrics
from kmed.serve.problems import ApiError
from kmed.serve.service import Service, TurnResult
from kmed.serve.settings import ServeSettings
from kmed.serve.store import SessionStore, SQLiteSessionStore

log = logging.getLogger("kmed.serve")
STATIC = Path(__file__).parent / "static"
PURGE_EVERY_S = 600


def create_app(assistant: object | Callable[[], object] | None, settings: ServeSettings | None = None,
               store: SessionStore | None = None) -> FastAPI:
    """``assistant``: a loaded Assistant, or a zero-argument loader run in the background at start-up
    (``/readyz`` answers 503 until it finishes)."""
    settings = settings or ServeSettings()
    metrics = Metrics()
    store = store or SQLiteSessionStore(settings.db_path, settings.session_ttl_s, settings.max_sessions)
    service = Service(settings, store, metrics)
    loader = None
    if callable(assistant) and not hasattr(assistant, "session"):
        loader = assistant
    elif assistant is not None:
        service.set_assistant(assistant)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if loader is not None:
            service.load_in_background(loader)

        async def purge() -> None:
            while True:
                await asyncio.sleep(PURGE_EVERY_S)
                with contextlib.suppress(Exception):
                    await run_in_threadpool(store.purge_expired)

        task = asyncio.create_task(purge())
        try:
            yield
        finally:
            task.cancel()
            await run_in_threadpool(service.queue.shutdown)
            store.close()

    # No /docs or /redoc: FastAPI's Swagger UI loads scripts from a CDN, and kmed serves nothing from
    # outside. The schema itself is at /openapi.json.
    app = FastAPI(title="kmed", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="근거와 출처가 있는 한국어 의료 상담 API. 진단이 아니며, 응급 상황이면 119에 전화하세요.")
    app.state.service = service
    app.add_middleware(RequestContext, metrics=metrics)
    _add_error_handlers(app)
    _add_session_routes(app, service)
    from kmed.serve.openai_api import add_openai_routes

    add_openai_routes(app, service)
    _add_ops_routes(app, service)
    return app


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(Busy)
    async def busy(request: Request, exc: Busy) -> JSONResponse:
        request.app.state.service.metrics.rejected.labels("busy").inc()
        return ApiError("busy", limit=exc.retry_after).response()

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        return ApiError("bad_field", detail=".".join(str(x) for x in first.get("loc", ()))).response()

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "bad_field")
        return ApiError(code).response()


def _reply_headers(result: TurnResult) -> dict[str, str]:
    headers = {"X-Kmed-Turn-Ms": f"{result.seconds * 1000:.2f}", "X-Kmed-Reply-Kind": result.reply.kind,
               "X-Kmed-Turns": str(result.turns)}
    if result.replayed:
        headers["X-Kmed-Replayed"] = "true"
    return headers


def _add_session_routes(app: FastAPI, service: Service) -> None:
    settings = service.settings

    @app.post("/v1/sessions", status_code=201)
    async def create_session(request: Request) -> JSONResponse:
        guard(request, service)
        service.require_ready()
        session_id = await run_in_threadpool(service.create_session)
        return JSONResponse({"session_id": session_id, "ttl_seconds": settings.session_ttl_s}, status_code=201,
                            headers={"Location": f"/v1/sessions/{session_id}"})

    @app.get("/v1/sessions/{session_id}")
    async def session_history(session_id: str, request: Request) -> JSONResponse:
        guard(request, service)
        return JSONResponse(await run_in_threadpool(service.history, session_id))

    @app.delete("/v1/sessions/{session_id}", status_code=204)
    async def delete_session(session_id: str, request: Request) -> Response:
        guard(request, service)
        if not await run_in_threadpool(service.delete_session, session_id):
            raise ApiError("unknown_session")
        return Response(status_code=204)

    @app.post("/v1/sessions/{session_id}/messages")
    async def post_message(session_id: str, request: Request) -> Response:
        guard(request, service)
        service.require_ready()
        text = message_text(await read_json(request, settings), "text", settings)
        key = request.headers.get("idempotency-key")
        if not wants_stream(request):
            result = await service.queue.run(service.turn, session_id, text, None, key)
            return JSONResponse(result.reply.to_dict(), headers=_reply_headers(result))
        return await _stream_turn(service, session_id, text, key)

    @app.get("/v1/passages/{passage_id:path}")
    async def passage(passage_id: str, request: Request) -> JSONResponse:
        guard(request, service)
        return JSONResponse(service.passage(passage_id))


async def _stream_turn(service: Service, session_id: str, text: str, key: str | None) -> Response:
    """SSE: ``token`` events while generating, ``notice`` and ``meta`` events, then ``reply`` (to_dict()).

    The first check (unknown session, full queue) happens before the stream starts, so those still
    get a plain JSON error with the right status.
    """
    loop = asyncio.get_running_loop()
    events: asyncio.Queue = asyncio.Queue()

    def emit(piece: str) -> None:
        loop.call_soon_threadsafe(events.put_nowait, ("token", piece))

    if await run_in_threadpool(service.store.load, session_id) is None:
        raise ApiError("unknown_session")
    future = service.queue.submit(service.turn, session_id, text, emit, key)  # Busy → 503 before streaming
    future.add_done_callback(lambda f: events.put_nowait(("done", None)))

    async def body() -> AsyncIterator[bytes]:
        streamed = False
        while True:
            kind, value = await events.get()
            if kind == "token":
                streamed = True
                yield sse("token", {"text": value})
                continue
            break
        try:
            result = future.result()
        except ApiError as exc:
            yield sse("error", exc.body()["error"])
            return
        except Exception:  # noqa: BLE001 - already logged by the service; the stream ends cleanly
            yield sse("error", ApiError("turn_failed").body()["error"])
            return
        if not streamed:  # the default composer answers at once: stream its verified answer in pieces
            for piece in pieces(result.reply.answer, service.settings.sse_chunk_chars):
                yield sse("token", {"text": piece})
        for notice in result.notices:
            yield sse("notice", {"text": notice})
        yield sse("meta", {"kind": result.reply.kind, "turns": result.turns, "turn_ms": round(result.seconds * 1000, 2),
                           "replayed": result.replayed})
        yield sse("reply", result.reply.to_dict())

    return StreamingResponse(body(), media_type="text/event-stream", headers=SSE_HEADERS)


def _add_ops_routes(app: FastAPI, service: Service) -> None:
    @app.get("/healthz")
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        state = await run_in_threadpool(service.readiness)
        return JSONResponse(state, status_code=200 if state["ready"] else 503)

    @app.get("/metrics")
    async def metrics() -> Response:
        service.metrics.sessions.set(await run_in_threadpool(service.store.count))
        body, ctype = service.metrics.render()
        return Response(body, media_type=ctype)

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8",
                            headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
