"""Reading requests safely and writing server-sent events; the ASGI middleware that logs and counts.

Bodies are read with a byte cap and a deadline, so an oversized or slow body costs the server
nothing but a 413 or 408. Every response carries ``X-Request-ID``.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kmed.serve import logs
from kmed.serve.limits import RateLimited
from kmed.serve.metrics import Metrics
from kmed.serve.problems import ApiError
from kmed.serve.settings import ServeSettings

log = logging.getLogger("kmed.serve")


async def read_json(request: Request, settings: ServeSettings) -> dict:
    """The body as a JSON object, or the ApiError that names what to fix."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/json" and not ctype.endswith("+json"):
        raise ApiError("unsupported_media_type", detail=ctype or "Content-Type 없음")
    limit = settings.max_body_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ApiError("body_too_large", limit=limit)

    async def collect() -> bytes:
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise ApiError("body_too_large", limit=limit)
            chunks.append(chunk)
        return b"".join(chunks)

    try:
        raw = await asyncio.wait_for(collect(), timeout=settings.body_timeout_s)
    except asyncio.TimeoutError as exc:
        raise ApiError("body_timeout", limit=int(settings.body_timeout_s)) from exc
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApiError("bad_json", detail=f"{type(exc).__name__} at byte {getattr(exc, 'pos', '?')}") from exc
    if not isinstance(data, dict):
        raise ApiError("bad_field", detail="본문은 JSON 객체여야 해요")
    return data


def message_text(data: dict, key: str, settings: ServeSettings) -> str:
    text = data.get(key)
    if not isinstance(text, str):
        raise ApiError("bad_field", detail=f"'{key}' 는 문자열이어야 해요")
    if len(text) > settings.max_message_chars:
        raise ApiError("message_too_long", limit=settings.max_message_chars)
    return text


def bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def guard(request: Request, service) -> None:
    """API key first (401), then the per-client rate limit (429)."""
    settings = service.settings
    token = bearer(request)
    if settings.api_key and not (token and hmac.compare_digest(token.encode(), settings.api_key.encode())):
        service.metrics.rejected.labels("unauthorized").inc()
        raise ApiError("unauthorized")
    key = "key:" + logs.client_tag(token) if token else "ip:" + (request.client.host if request.client else "?")
    try:
        service.limiter.check(key)
    except RateLimited as exc:
        service.metrics.rejected.labels("rate_limited").inc()
        raise ApiError("rate_limited", limit=exc.retry_after) from exc


def wants_stream(request: Request) -> bool:
    return "text/event-stream" in request.headers.get("accept", "").lower()


def sse(event: str, data: object) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


def pieces(text: str, size: int) -> list[str]:
    """Line-preserving chunks of at most ``size`` characters, for streaming a finished answer."""
    out = []
    for line in text.splitlines(keepends=True):
        out.extend(line[i:i + size] for i in range(0, len(line), size))
    return out


SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


class RequestContext:
    """Pure ASGI middleware: request id, one JSON log line per request, Prometheus counters."""

    def __init__(self, app: ASGIApp, metrics: Metrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        rid = logs.safe_request_id(headers.get("x-request-id"))
        token = logs.request_id.set(rid)
        started = time.perf_counter()
        status: dict = {"code": 500}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                status["started"] = True
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:  # noqa: BLE001 - logged scrubbed here; the client gets JSON, never a traceback
            log.exception("unhandled error")
            if not status.get("started"):
                status["code"] = 500
                error = ApiError("internal")
                await error.response()(scope, receive, send_with_id)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            seconds = time.perf_counter() - started
            self.metrics.requests.labels(scope["method"], route, str(status["code"])).inc()
            self.metrics.latency.labels(route).observe(seconds)
            client = scope.get("client") or ("?", 0)
            log.info("request", extra={"method": scope["method"], "route": route, "status": status["code"],
                                       "ms": round(seconds * 1000, 2), "client": logs.client_tag(str(client[0]))})
            logs.request_id.reset(token)
