"""Every error the HTTP API gives: status, a Korean and an English message, and the fix.

    {"error": {"code": "unknown_session", "message": "…", "message_en": "…", "fix": "…", "type": "invalid_request_error"}}

``message`` is what OpenAI client libraries show, so it carries the Korean text and the fix; a
traceback never leaves the server (it goes to the log, scrubbed).
"""

from __future__ import annotations

import json
from pathlib import Path

from fastapi.responses import JSONResponse

# code: (status, Korean, English, fix); the table lives in problems.json, shipped as package data
_TABLE = json.loads((Path(__file__).parent / "problems.json").read_text(encoding="utf-8"))
PROBLEMS: dict[str, tuple[int, str, str, str]] = {
    code: (row["status"], row["message"], row["message_en"], row["fix"]) for code, row in _TABLE.items()
}
_TYPES = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error", 408: "timeout_error",
          413: "invalid_request_error", 415: "invalid_request_error", 422: "invalid_request_error",
          429: "rate_limit_error", 500: "server_error", 503: "server_error"}


class ApiError(Exception):
    def __init__(self, code: str, limit: object = "", detail: str | None = None, headers: dict | None = None):
        status, ko, en, fix = PROBLEMS[code]
        super().__init__(code)
        self.code = code
        self.status = status
        self.message = ko if not detail else f"{ko} ({detail})"
        self.message_en = en
        self.fix = fix.replace("{limit}", str(limit))
        self.headers = dict(headers or {})
        if code == "unauthorized":
            self.headers.setdefault("WWW-Authenticate", "Bearer")
        if code in ("rate_limited", "busy") and limit != "":
            self.headers.setdefault("Retry-After", str(limit))
        if code == "not_ready":
            self.headers.setdefault("Retry-After", "5")

    def body(self) -> dict:
        return {"error": {"code": self.code, "type": _TYPES.get(self.status, "server_error"),
                          "message": f"{self.message} {self.fix}", "message_en": self.message_en, "fix": self.fix}}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)
