"""Where consultations live between turns: a small ``SessionStore`` interface and its SQLite default.

    store = SQLiteSessionStore("kmed-sessions.sqlite3", ttl_seconds=86400, max_sessions=10000)
    store.create("ab12…", record)   # record: kmed.serve.state_codec.encode_session(session)
    store.load("ab12…")             # the record, or None when unknown or expired

Records hold redacted text only (see state_codec). SQLite runs in WAL mode: a write that returned is
on disk, so a killed server loses at most the turn it was computing, never a stored one. Another
store (Redis, Postgres) only has to implement ``SessionStore``.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Protocol, runtime_checkable


@runtime_checkable
class SessionStore(Protocol):
    ttl_seconds: float
    max_sessions: int

    def create(self, session_id: str, record: dict) -> None: ...
    def load(self, session_id: str) -> dict | None: ...
    def save(self, session_id: str, record: dict) -> None: ...
    def delete(self, session_id: str) -> bool: ...
    def count(self) -> int: ...
    def purge_expired(self) -> int: ...
    def ping(self) -> bool: ...
    def close(self) -> None: ...


_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
  id TEXT PRIMARY KEY,
  created REAL NOT NULL,
  updated REAL NOT NULL,
  turns INTEGER NOT NULL DEFAULT 0,
  record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_updated ON sessions(updated);
"""


def _turns(record: dict) -> int:
    return sum(1 for t in record.get("state", {}).get("history", []) if t.get("role") == "user")


class SQLiteSessionStore:
    """Sessions in one SQLite file; expired ones (idle longer than ``ttl_seconds``) read as unknown.

    When ``max_sessions`` is reached, creating one more first drops the expired sessions, then the
    least recently used one, so a 24-hour service never refuses a new consultation for lack of room.
    """

    def __init__(self, path: str | Path, ttl_seconds: float = 86400.0, max_sessions: int = 10000):
        if ttl_seconds <= 0 or max_sessions <= 0:
            raise ValueError("ttl_seconds and max_sessions must be positive")
        self.path = str(path)
        self.ttl_seconds = ttl_seconds
        self.max_sessions = max_sessions
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # durable across a killed process in WAL mode
            self._db.executescript(_SCHEMA)

    def _cutoff(self) -> float:
        return time.time() - self.ttl_seconds

    def create(self, session_id: str, record: dict) -> None:
        now = time.time()
        text = json.dumps(record, ensure_ascii=False)
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                (count,) = self._db.execute("SELECT COUNT(*) FROM sessions").fetchone()
                if count >= self.max_sessions:
                    self._db.execute("DELETE FROM sessions WHERE updated < ?", (self._cutoff(),))
                    (count,) = self._db.execute("SELECT COUNT(*) FROM sessions").fetchone()
                    if count >= self.max_sessions:
                        self._db.execute("DELETE FROM sessions WHERE id IN (SELECT id FROM sessions ORDER BY updated LIMIT ?)",
                                         (count - self.max_sessions + 1,))
                self._db.execute("INSERT INTO sessions (id, created, updated, turns, record) VALUES (?, ?, ?, ?, ?)",
                                 (session_id, now, now, _turns(record), text))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def load(self, session_id: str) -> dict | None:
        with self._lock:
            row = self._db.execute("SELECT record FROM sessions WHERE id = ? AND updated >= ?",
                                   (session_id, self._cutoff())).fetchone()
        return json.loads(row[0]) if row else None

    def save(self, session_id: str, record: dict) -> None:
        text = json.dumps(record, ensure_ascii=False)
        with self._lock:
            self._db.execute("UPDATE sessions SET updated = ?, turns = ?, record = ? WHERE id = ?",
                             (time.time(), _turns(record), text, session_id))

    def delete(self, session_id: str) -> bool:
        with self._lock:
            return self._db.execute("DELETE FROM sessions WHERE id = ?", (session_id,)).rowcount > 0

    def count(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM sessions WHERE updated >= ?", (self._cutoff(),)).fetchone()[0]

    def purge_expired(self) -> int:
        with self._lock:
            return self._db.execute("DELETE FROM sessions WHERE updated < ?", (self._cutoff(),)).rowcount

    def ping(self) -> bool:
        try:
            with self._lock:
                self._db.execute("SELECT 1").fetchone()
            return True
        except sqlite3.Error:
            return False

    def close(self) -> None:
        with self._lock:
            self._db.close()


class MemorySessionStore:
    """The same interface in a dict: for tests and throwaway servers (nothing survives a restart)."""

    def __init__(self, ttl_seconds: float = 86400.0, max_sessions: int = 10000):
        self.ttl_seconds = ttl_seconds
        self.max_sessions = max_sessions
        self._rows: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()

    def create(self, session_id: str, record: dict) -> None:
        with self._lock:
            self._purge()
            while len(self._rows) >= self.max_sessions:
                del self._rows[min(self._rows, key=lambda k: self._rows[k][0])]
            self._rows[session_id] = (time.time(), json.dumps(record, ensure_ascii=False))

    def load(self, session_id: str) -> dict | None:
        with self._lock:
            row = self._rows.get(session_id)
        if row is None or row[0] < time.time() - self.ttl_seconds:
            return None
        return json.loads(row[1])

    def save(self, session_id: str, record: dict) -> None:
        with self._lock:
            if session_id in self._rows:
                self._rows[session_id] = (time.time(), json.dumps(record, ensure_ascii=False))

    def delete(self, session_id: str) -> bool:
        with self._lock:
            return self._rows.pop(session_id, None) is not None

    def count(self) -> int:
        cutoff = time.time() - self.ttl_seconds
        with self._lock:
            return sum(1 for updated, _ in self._rows.values() if updated >= cutoff)

    def _purge(self) -> int:
        cutoff = time.time() - self.ttl_seconds
        old = [k for k, (updated, _) in self._rows.items() if updated < cutoff]
        for k in old:
            del self._rows[k]
        return len(old)

    def purge_expired(self) -> int:
        with self._lock:
            return self._purge()

    def ping(self) -> bool:
        return True

    def close(self) -> None:
        pass
