"""Every error the HTTP API gives: status, a Korean and an English message, and the fix.

    {"error": {"code": "unknown_session", "message": "…", "message_en": "…", "fix": "…", "type": "invalid_request_error"}}

``message`` is what OpenAI client libraries show, so it carries the Korean text and the fix; a
traceback never leaves the server (it goes to the log, scrubbed).
"""

from __future__ import annotations

from fastapi.responses import JSONResponse

# code: (status, Korean, English, fix)
PROBLEMS: dict[str, tuple[int, str, str, str]] = {
    "bad_json": (400, "요청 본문이 올바른 JSON이 아니에요.", "The request body is not valid JSON.",
                 'UTF-8 JSON 객체를 보내세요. 예: {"text": "어제부터 열이 나요"}'),
    "bad_field": (422, "요청 내용이 올바르지 않아요.", "A field is missing or has the wrong type.",
                  '필요한 필드를 확인하세요. 메시지는 {"text": "…"}, 채팅 완성은 {"model": "kmed", "messages": [...]} 형태예요.'),
    "unsupported_media_type": (415, "JSON만 받을 수 있어요.", "Only application/json bodies are accepted.",
                               "Content-Type: application/json 헤더를 붙여 보내세요."),
    "body_too_large": (413, "요청 본문이 너무 커요.", "The request body is too large.",
                       "본문을 {limit}바이트 이하로 줄이세요 (서버 설정 --max-body-bytes)."),
    "message_too_long": (413, "메시지가 너무 길어요.", "The message is too long.",
                         "메시지를 {limit}자 이하로 줄여 나눠 보내세요."),
    "body_timeout": (408, "요청 본문이 제때 도착하지 않았어요.", "The request body arrived too slowly.",
                     "네트워크를 확인하고 다시 보내세요 ({limit}초 안에 본문 전체를 보내야 해요)."),
    "unauthorized": (401, "API 키가 없거나 맞지 않아요.", "Missing or wrong API key.",
                     "Authorization: Bearer <키> 헤더를 붙이세요 (서버를 띄울 때 준 --api-key 또는 KMED_API_KEY)."),
    "unknown_session": (404, "상담을 찾을 수 없어요. 끝났거나 오래되어 만료됐어요.", "Unknown or expired session.",
                        "POST /v1/sessions 로 새 상담을 시작하세요."),
    "corrupt_session": (500, "저장된 상담을 읽지 못했어요.", "The stored session could not be read.",
                        "POST /v1/sessions 로 새 상담을 시작하세요."),
    "unknown_passage": (404, "그런 출처 문단이 없어요.", "Unknown passage id.", "답변의 citations[].id 값을 그대로 쓰세요."),
    "unknown_model": (404, "그런 모델이 없어요.", "Unknown model.", 'model 에 "kmed" 를 쓰세요 (GET /v1/models).'),
    "no_user_message": (422, "사용자 메시지가 없어요.", "No user message in messages.",
                        'messages 의 마지막에 {"role": "user", "content": "…"} 를 넣으세요.'),
    "rate_limited": (429, "요청이 너무 잦아요.", "Too many requests from this client.",
                     "{limit}초 뒤에 다시 보내세요 (Retry-After 헤더)."),
    "busy": (503, "지금 상담이 몰려 있어요.", "The server is busy: its work queue is full.",
             "{limit}초 뒤에 다시 보내세요 (Retry-After 헤더). 급한 증상이면 바로 119에 전화하세요."),
    "not_ready": (503, "서버가 아직 준비 중이에요 (인덱스를 불러오는 중).", "The server is still loading its indexes.",
                  "잠시 뒤 다시 시도하세요. GET /readyz 가 200이면 준비된 거예요."),
    "turn_failed": (500, "이번 답변을 만들지 못했어요. 상담은 그대로 남아 있어요.", "This turn failed; the session is intact.",
                    "같은 메시지를 다시 보내세요. 급한 증상이면 바로 119에 전화하세요."),
    "not_found": (404, "그런 주소가 없어요.", "No such endpoint.", "GET / (웹 상담), /v1/sessions, /v1/chat/completions 를 쓰세요."),
    "method_not_allowed": (405, "이 주소에서는 그 방법(HTTP 메서드)을 쓸 수 없어요.", "Method not allowed on this endpoint.",
                           "API 명세(GET /openapi.json)에서 메서드를 확인하세요."),
    "internal": (500, "서버에서 예상하지 못한 문제가 생겼어요.", "Unexpected server error.",
                 "잠시 뒤 다시 시도하세요. 계속되면 요청 ID(X-Request-ID)와 함께 알려 주세요."),
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
