"""The server's consultation logic, free of HTTP: sessions in a store, turns in worker threads.

    service = Service(settings, SQLiteSessionStore(path), Metrics())
    service.set_assistant(Assistant.load())
    sid = service.create_session()
    result = await service.queue.run(service.turn, sid, "어제부터 열이 나요", None, None)

A turn loads the session from the store, runs ``Session.stream`` (the whole agent: guardrails,
red flags, retrieval, generation, output guard), and saves it back. The store is written only after
a turn completes, so a turn that fails leaves the session exactly as it was. Turns of one session
run one at a time (a lock per session); turns of different sessions run in parallel.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from kmed.agent.reply import Reply
from kmed.agent.session import Session
from kmed.serve.limits import RateLimiter, WorkQueue
from kmed.serve.metrics import Metrics
from kmed.serve.problems import ApiError
from kmed.serve.settings import ServeSettings
from kmed.serve.state_codec import decode_reply, decode_session, encode_session, user_turns
from kmed.serve.store import SessionStore

log = logging.getLogger("kmed.serve")


@dataclass
class TurnResult:
    reply: Reply
    turns: int  # user turns stored for this session after the turn
    seconds: float
    replayed: bool = False  # True when an Idempotency-Key matched the last turn: nothing was recomputed
    notices: list[str] = field(default_factory=list)


class Service:
    def __init__(self, settings: ServeSettings, store: SessionStore, metrics: Metrics):
        self.settings = settings
        self.store = store
        self.metrics = metrics
        self.assistant = None
        self.load_error: str | None = None
        self.queue = WorkQueue(settings.workers, settings.queue_size, on_depth=self._depth)
        self.limiter = RateLimiter(settings.rate_limit_per_min, settings.rate_burst)
        self._locks: dict[str, list] = {}  # session id -> [lock, users]
        self._locks_guard = threading.Lock()
        self._passages: dict | None = None

    def _depth(self, depth: int) -> None:
        self.metrics.queue_depth.set(depth)
        self.metrics.in_flight.set(self.queue.admitted)

    # --- readiness -------------------------------------------------------------------------------
    def set_assistant(self, assistant) -> None:
        self.assistant = assistant

    def load_in_background(self, loader: Callable[[], object]) -> threading.Thread:
        def run() -> None:
            try:
                self.set_assistant(loader())
                log.info("assistant loaded", extra={"generator": getattr(self.assistant.generator, "name", "?")})
            except Exception as exc:  # noqa: BLE001 - reported by /readyz, the server stays up
                self.load_error = type(exc).__name__
                log.exception("assistant failed to load")

        thread = threading.Thread(target=run, name="kmed-load", daemon=True)
        thread.start()
        return thread

    def readiness(self) -> dict:
        a = self.assistant
        checks = {
            "assistant": a is not None,
            "index": bool(a is not None and getattr(getattr(a.retriever, "a", None), "passages", None)),
            "generator": a is not None and getattr(a, "generator", None) is not None,
            "store": self.store.ping(),
        }
        out = {"ready": all(checks.values()), "checks": checks}
        if a is not None:
            out["generator"] = getattr(a.generator, "name", type(a.generator).__name__)
        if self.load_error:
            out["load_error"] = self.load_error
        return out

    def require_ready(self):
        if self.assistant is None:
            raise ApiError("not_ready")
        return self.assistant

    # --- sessions --------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _lock(self, session_id: str) -> Iterator[None]:
        """One lock per live session id (not striped: a worker must never wait on another session's turn)."""
        with self._locks_guard:
            entry = self._locks.setdefault(session_id, [threading.Lock(), 0])
            entry[1] += 1
        try:
            with entry[0]:
                yield
        finally:
            with self._locks_guard:
                entry[1] -= 1
                if entry[1] == 0:
                    del self._locks[session_id]

    def create_session(self) -> str:
        session_id = os.urandom(16).hex()
        self.store.create(session_id, encode_session(Session(self.require_ready())))
        return session_id

    def delete_session(self, session_id: str) -> bool:
        with self._lock(session_id):
            return self.store.delete(session_id)

    def history(self, session_id: str) -> dict:
        record = self.store.load(session_id)
        if record is None:
            raise ApiError("unknown_session")
        return {"id": session_id, "turns": user_turns(record),
                "history": record.get("state", {}).get("history", []), "last_reply": record.get("last_reply")}

    def turn(self, session_id: str, text: str, emit: Callable[[str], None] | None, idempotency_key: str | None) -> TurnResult:
        """Run one turn in the calling (worker) thread; ``emit`` gets streamed tokens."""
        assistant = self.require_ready()
        started = time.perf_counter()
        with self._lock(session_id):
            record = self.store.load(session_id)
            if record is None:
                raise ApiError("unknown_session")
            if idempotency_key and record.get("idempotency_key") == idempotency_key and record.get("last_reply"):
                reply = decode_reply(record["last_reply"])
                return TurnResult(reply, user_turns(record), time.perf_counter() - started, replayed=True)
            try:
                session = decode_session(record, assistant)
            except (ValueError, TypeError, KeyError) as exc:
                log.error("stored session unreadable", extra={"exc_type": type(exc).__name__})
                raise ApiError("corrupt_session") from exc
            reply = self.run_session(session, text, emit)
            try:
                record = encode_session(session)
                record["idempotency_key"] = idempotency_key
                self.store.save(session_id, record)
            except Exception as exc:  # the stored session stays as it was before this turn
                self.metrics.turn_errors.inc()
                log.exception("turn could not be stored")
                raise ApiError("turn_failed") from exc
        return TurnResult(reply, user_turns(record), time.perf_counter() - started, notices=list(reply.notices))

    def run_session(self, session: Session, text: str, emit: Callable[[str], None] | None) -> Reply:
        """``Session.stream`` with metrics; any exception it lets out becomes ``turn_failed``."""
        started = time.perf_counter()
        reply = None
        try:
            for event, value in session.stream(text):
                if event == "token" and emit is not None:
                    emit(value)
                elif event == "reply":
                    reply = value
            if reply is None:
                raise RuntimeError("the session gave no reply")
        except ApiError:
            raise
        except Exception as exc:
            self.metrics.turn_errors.inc()
            log.exception("turn failed outside the agent's guard")
            raise ApiError("turn_failed") from exc
        self.metrics.observe_reply(reply, time.perf_counter() - started)
        log.info("turn", extra={"kind": reply.kind, "triage": reply.triage.level, "refused": reply.refused,
                                "turn_ms": round((time.perf_counter() - started) * 1000, 2)})
        return reply

    # --- passages for the web page's citation view ----------------------------------------------
    def passage(self, passage_id: str) -> dict:
        a = self.require_ready()
        if self._passages is None:
            passages = getattr(getattr(a.retriever, "a", None), "passages", None) or []
            self._passages = {p.id: p for p in passages}
        p = self._passages.get(passage_id)
        if p is not None:
            ids = p.metadata.get("source_ids") or []
            return {"id": p.id, "title": p.title, "text": p.text, "source": p.metadata.get("source", ""),
                    "sources": [self._source(s) for s in ids]}
        rule = getattr(a.kb, "red_flags", {}).get(passage_id)
        if rule is not None:
            ids = rule.source_ids()
            return {"id": rule.id, "title": rule.name, "text": f"{rule.reason} {rule.action}",
                    "source": a.source_names(ids), "sources": [self._source(s) for s in ids]}
        raise ApiError("unknown_passage")

    def _source(self, source_id: str) -> dict:
        s = self.assistant.kb.sources.get(source_id)
        if s is None:
            return {"id": source_id, "publisher": "", "title": source_id, "url": None}
        return {"id": source_id, "publisher": s.publisher, "title": s.title, "url": s.url}
