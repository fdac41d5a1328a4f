"""Every setting of ``kmed serve``, with the reason for its default; validated when built.

    ServeSettings(port=8000, api_key="s3cret", db_path="runs/sessions.sqlite3")
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from kmed.errors import ConfigError


@dataclass
class ServeSettings:
    host: str = "127.0.0.1"  # loopback by default: exposing a medical service is a deliberate choice
    port: int = 8000
    api_key: str | None = None  # bearer token for /v1/*; None leaves the API open (fine on loopback)
    db_path: str | Path = "kmed-sessions.sqlite3"  # ":memory:" keeps nothing across restarts
    session_ttl_s: float = 86400.0  # a consultation idle for a day expires
    max_sessions: int = 10000  # oldest idle sessions go first when full
    max_message_chars: int = 2000  # the agent reads 1000 and says so; more than twice that is a mistake
    max_body_bytes: int = 256 * 1024  # an OpenAI request carries its history; 256 KiB is ~50 long turns
    body_timeout_s: float = 15.0  # a client that takes longer to send its body gets 408
    rate_limit_per_min: float = 60.0  # per client (API key, else address); 0 turns it off
    rate_burst: int = 20  # requests a client may send at once before the per-minute rate applies
    workers: int = 2  # generation threads; the default composer is CPU-bound, so about one per core
    queue_size: int = 64  # turns waiting beyond the workers; more get 503 with Retry-After
    sse_chunk_chars: int = 24  # the default composer answers at once; its answer is streamed in pieces this size
    log_level: str = "INFO"

    def __post_init__(self) -> None:
        checks = [
            (1 <= self.port <= 65535, f"포트 {self.port}는 쓸 수 없어요.", "--port 에 1~65535 사이 값을 주세요."),
            (self.workers >= 1, "workers는 1 이상이어야 해요.", "--workers 1 이상으로 주세요."),
            (self.queue_size >= 0, "queue_size는 0 이상이어야 해요.", "--queue-size 0 이상으로 주세요."),
            (self.max_message_chars >= 1, "max_message_chars는 1 이상이어야 해요.", "--max-message-chars 를 고치세요."),
            (self.max_body_bytes >= 1024, "max_body_bytes는 1024 이상이어야 해요.", "--max-body-bytes 를 고치세요."),
            (self.session_ttl_s > 0 and self.max_sessions > 0, "세션 TTL과 최대 세션 수는 양수여야 해요.",
             "--session-ttl, --max-sessions 를 고치세요."),
            (self.rate_limit_per_min >= 0 and self.rate_burst >= 1, "속도 제한 값이 잘못됐어요.",
             "--rate-limit 0 이상, --rate-burst 1 이상으로 주세요."),
            (self.api_key is None or len(self.api_key) >= 8, "API 키가 너무 짧아요(8자 이상).", "--api-key 를 8자 이상으로 주세요."),
        ]
        for ok, message, fix in checks:
            if not ok:
                raise ConfigError(message, fix)

    @classmethod
    def from_env(cls, **overrides) -> ServeSettings:
        """``KMED_API_KEY`` supplies the key when none is given, so it need not appear in ``ps``."""
        if overrides.get("api_key") is None and os.environ.get("KMED_API_KEY"):
            overrides["api_key"] = os.environ["KMED_API_KEY"]
        return cls(**{k: v for k, v in overrides.items() if v is not None})
