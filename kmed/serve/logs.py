"""JSON-lines logs with a request id and no personal data.

    {"ts": "2026-11-24T06:40:01.123Z", "level": "INFO", "logger": "kmed.serve", "msg": "request",
     "request_id": "3f2a…", "method": "POST", "route": "/v1/sessions/{session_id}/messages", "status": 200, "ms": 4.1}

Message text is never logged. Anything that could carry it (an exception's message) passes through
kmed.agent.guardrails.clean_input first; client addresses are logged as a salted hash.
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import logging
import os
import re
import sys
import time
import traceback

from kmed.agent.guardrails import clean_input

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("kmed_request_id", default="-")
_SALT = os.urandom(8)
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "color_message"}


def safe_request_id(incoming: str | None) -> str:
    """Keep a caller's X-Request-ID when it is a plain token, else make one."""
    if incoming and _SAFE_ID.match(incoming):
        return incoming
    return os.urandom(8).hex()


def client_tag(address: str) -> str:
    return hashlib.sha256(_SALT + address.encode()).hexdigest()[:12]


def scrub(text: str) -> str:
    return clean_input(text).text[:300]


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": scrub(record.getMessage()),
            "request_id": request_id.get(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value if isinstance(value, (int, float, bool)) or value is None else scrub(str(value))
        if record.exc_info and record.exc_info[0] is not None:
            kind, exc, tb = record.exc_info
            out["exc_type"] = kind.__name__
            out["exc"] = scrub(str(exc))
            # Frames only (file, line, function): source lines and locals could echo what a person typed.
            out["stack"] = [f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno} {f.name}" for f in traceback.extract_tb(tb)][-8:]
        return json.dumps(out, ensure_ascii=False)


def configure(level: str = "INFO", stream=None) -> None:
    """Route the root logger (kmed, uvicorn errors) to JSON lines on stderr; uvicorn's access log is off."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True  # it logs raw paths and client addresses; ours does not
