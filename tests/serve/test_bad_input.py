"""Bad input gets the right status and a Korean message naming the fix, never a traceback."""

from __future__ import annotations

import socket
import time

import pytest
from starlette.testclient import TestClient

KEY = "test-key-12345"
AUTH = {"Authorization": f"Bearer {KEY}"}
JSON = {"Content-Type": "application/json", **AUTH}


@pytest.fixture(scope="module")
def app_client(assistant, tmp_path_factory):
    from kmed.serve import ServeSettings, create_app

    settings = ServeSettings(db_path=tmp_path_factory.mktemp("bad") / "s.db", api_key=KEY, rate_limit_per_min=0,
                             max_body_bytes=4096, max_message_chars=200)
    with TestClient(create_app(assistant, settings), raise_server_exceptions=False) as c:
        c.sid = c.post("/v1/sessions", headers=AUTH).json()["session_id"]
        yield c


def _chunks():
    for _ in range(10):
        yield b'{"text": "' + b"a" * 1000


CASES = [
    # id, method, path, kwargs, status, code
    ("malformed-json", "POST", "/v1/sessions/{sid}/messages", {"content": b'{"text": ', "headers": JSON}, 400, "bad_json"),
    ("not-utf8", "POST", "/v1/sessions/{sid}/messages", {"content": b'{"text": "\xff"}', "headers": JSON}, 400, "bad_json"),
    ("json-array", "POST", "/v1/sessions/{sid}/messages", {"content": b'["hi"]', "headers": JSON}, 422, "bad_field"),
    ("missing-text", "POST", "/v1/sessions/{sid}/messages", {"json": {"txt": "hi"}, "headers": AUTH}, 422, "bad_field"),
    ("text-not-string", "POST", "/v1/sessions/{sid}/messages", {"json": {"text": 3}, "headers": AUTH}, 422, "bad_field"),
    ("wrong-content-type", "POST", "/v1/sessions/{sid}/messages",
     {"content": b"text=hi", "headers": {"Content-Type": "application/x-www-form-urlencoded", **AUTH}}, 415,
     "unsupported_media_type"),
    ("no-content-type", "POST", "/v1/sessions/{sid}/messages", {"content": b'{"text": "hi"}', "headers": AUTH}, 415,
     "unsupported_media_type"),
    ("oversized-body", "POST", "/v1/sessions/{sid}/messages", {"json": {"text": "가" * 3000}, "headers": AUTH}, 413,
     "body_too_large"),
    ("oversized-chunked", "POST", "/v1/sessions/{sid}/messages", {"content": _chunks, "headers": JSON}, 413,
     "body_too_large"),
    ("message-too-long", "POST", "/v1/sessions/{sid}/messages", {"json": {"text": "아" * 201}, "headers": AUTH}, 413,
     "message_too_long"),
    ("unknown-session", "POST", "/v1/sessions/nope/messages", {"json": {"text": "두통"}, "headers": AUTH}, 404,
     "unknown_session"),
    ("unknown-session-sse", "POST", "/v1/sessions/nope/messages",
     {"json": {"text": "두통"}, "headers": {"Accept": "text/event-stream", **AUTH}}, 404, "unknown_session"),
    ("delete-unknown", "DELETE", "/v1/sessions/nope", {"headers": AUTH}, 404, "unknown_session"),
    ("get-unknown", "GET", "/v1/sessions/nope", {"headers": AUTH}, 404, "unknown_session"),
    ("unknown-passage", "GET", "/v1/passages/nope", {"headers": AUTH}, 404, "unknown_passage"),
    ("missing-key", "POST", "/v1/sessions", {}, 401, "unauthorized"),
    ("wrong-key", "POST", "/v1/sessions", {"headers": {"Authorization": "Bearer nope-nope-nope"}}, 401, "unauthorized"),
    ("basic-auth", "POST", "/v1/sessions", {"headers": {"Authorization": "Basic dXNlcjpwYXNz"}}, 401, "unauthorized"),
    ("unknown-route", "GET", "/v2/whatever", {}, 404, "not_found"),
    ("wrong-method", "PUT", "/v1/sessions", {"headers": AUTH}, 405, "method_not_allowed"),
    ("openai-unknown-model", "POST", "/v1/chat/completions",
     {"json": {"model": "gpt-4", "messages": [{"role": "user", "content": "두통"}]}, "headers": AUTH}, 404, "unknown_model"),
    ("openai-no-user", "POST", "/v1/chat/completions",
     {"json": {"model": "kmed", "messages": [{"role": "system", "content": "hi"}]}, "headers": AUTH}, 422,
     "no_user_message"),
    ("openai-messages-not-list", "POST", "/v1/chat/completions",
     {"json": {"model": "kmed", "messages": "두통"}, "headers": AUTH}, 422, "bad_field"),
    ("openai-bad-content", "POST", "/v1/chat/completions",
     {"json": {"model": "kmed", "messages": [{"role": "user", "content": 5}]}, "headers": AUTH}, 422, "bad_field"),
    ("openai-stream-not-bool", "POST", "/v1/chat/completions",
     {"json": {"model": "kmed", "stream": "yes", "messages": [{"role": "user", "content": "두통"}]}, "headers": AUTH},
     422, "bad_field"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input(app_client, case):
    _, method, path, kwargs, status, code = case
    kwargs = dict(kwargs)
    if callable(kwargs.get("content")):
        kwargs["content"] = kwargs["content"]()
    r = app_client.request(method, path.format(sid=app_client.sid), **kwargs)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["code"] == code
    assert error["message"] and error["message_en"] and error["fix"]
    assert any("가" <= ch <= "힣" for ch in error["message"])  # Korean, with the fix in it
    assert error["fix"] in error["message"]
    assert "Traceback" not in r.text and "File \"" not in r.text
    assert r.headers["x-request-id"]


def test_session_still_works_after_bad_input(app_client):
    r = app_client.post(f"/v1/sessions/{app_client.sid}/messages", json={"text": "두통이 있어요"}, headers=AUTH)
    assert r.status_code == 200 and r.json()["answer"]


def test_empty_and_control_characters_are_answered_kindly(app_client):
    for text in ("", "   ", "\u0000\u200b"):
        r = app_client.post(f"/v1/sessions/{app_client.sid}/messages", json={"text": text}, headers=AUTH)
        assert r.status_code == 200 and "적어 주세요" in r.json()["answer"]


def test_slow_client_gets_408(make_app, live_server):
    server = live_server(make_app(body_timeout_s=1.0, rate_limit_per_min=0))
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(b"POST /v1/sessions/x/messages HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"text\": ")
        started = time.monotonic()
        data = b""
        while b"\r\n\r\n" not in data or b"}}" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    assert data.startswith(b"HTTP/1.1 408"), data[:200]
    assert "제때 도착하지".encode() in data
    assert time.monotonic() - started < 5
