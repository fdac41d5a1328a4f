"""Plain-JSON form of a consultation, so a session survives a server restart.

    record = encode_session(session)            # {"v": 1, "state": {...}, "last_reply": {...}}
    session = decode_session(record, assistant)  # a kmed.agent.session.Session, ready for the next turn

Only ``SessionState``'s public fields are read, through ``dataclasses.fields()``, so fields added to
it later do not break the codec:
- a new field whose value is plain JSON (or a set, a tuple, a dataclass of plain values) is stored
  and restored as is;
- a field missing from an older record keeps the dataclass default;
- a stored field the class no longer has is ignored.

Red flags are stored by rule id and re-resolved through ``assistant.red_flags.rules``, so a restored
session escalates with the rules the server runs now; a rule that no longer exists is dropped.
Text in ``history`` is already redacted by the agent's input guard (kmed.agent.guardrails.clean_input);
the codec redacts it once more (PII only), so nothing personal reaches the store even if that changes.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from kmed.agent.red_flags import RedFlagMatch
from kmed.agent.reply import Citation, Reply, Triage
from kmed.agent.session import Session, SessionState
from kmed.data.pii import redact

log = logging.getLogger(__name__)
VERSION = 1
_SPECIAL = ("profile", "flags", "history")


def _plain(value: Any) -> Any:
    """JSON-ready copy of a value built from dataclasses, sets, tuples, dicts and scalars."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (set, frozenset)):
        return sorted(_plain(v) for v in value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise TypeError(f"cannot store {type(value).__name__}")


def _like(default: Any, stored: Any) -> Any:
    """Stored JSON shaped like the field's default (a list back into a set, a dict into a dataclass)."""
    if dataclasses.is_dataclass(default) and isinstance(stored, dict):
        known = {f.name for f in dataclasses.fields(default) if f.init}
        kwargs = {k: _like(getattr(default, k), v) for k, v in stored.items() if k in known}
        return type(default)(**kwargs)
    if isinstance(default, (set, frozenset)) and isinstance(stored, list):
        return type(default)(stored)
    if isinstance(default, tuple) and isinstance(stored, list):
        return tuple(stored)
    return stored


def _redacted_history(history: list[dict]) -> list[dict]:
    out = []
    for turn in history:
        content = turn.get("content", "")
        out.append({**turn, "content": redact(content)[0] if isinstance(content, str) else content})
    return out


def encode_state(state: SessionState) -> dict:
    data: dict[str, Any] = {}
    for f in dataclasses.fields(state):
        value = getattr(state, f.name)
        if f.name == "flags":
            data["flags"] = [{"rule": m.rule.id, "evidence": list(m.evidence)} for m in value]
        elif f.name == "history":
            data["history"] = _redacted_history(value)
        else:
            try:
                data[f.name] = _plain(value)
            except TypeError:  # a field added later that is not plain data: it restarts from its default
                log.warning("session field %s is not stored (%s)", f.name, type(value).__name__)
    return data


def decode_state(data: dict, assistant) -> SessionState:
    state = SessionState()
    rules = {rule.id: rule for rule in assistant.red_flags.rules}
    for f in dataclasses.fields(state):
        if f.name not in data or not f.init:
            continue
        stored = data[f.name]
        if f.name == "flags":
            flags = [RedFlagMatch(rules[m["rule"]], tuple(m.get("evidence", ()))) for m in stored if m.get("rule") in rules]
            dropped = len(stored) - len(flags)
            if dropped:
                log.warning("dropped %d stored red flag(s) whose rule no longer exists", dropped)
            state.flags = flags
        elif f.name == "history":
            state.history = [dict(turn) for turn in stored if isinstance(turn, dict)]
        else:
            setattr(state, f.name, _like(getattr(state, f.name), stored))
    return state


def encode_reply(reply: Reply | None) -> dict | None:
    if reply is None:
        return None
    return {**reply.to_dict(), "kind": reply.kind}


def decode_reply(data: dict | None) -> Reply | None:
    if not data:
        return None
    return Reply(
        answer=data.get("answer", ""),
        citations=[Citation(**c) for c in data.get("citations", [])],
        triage=Triage(**data.get("triage", {"level": "info"})),
        entities=list(data.get("entities", [])),
        departments=list(data.get("departments", [])),
        refused=bool(data.get("refused", False)),
        kind=data.get("kind", "answer"),
    )


def encode_session(session: Session) -> dict:
    return {"v": VERSION, "state": encode_state(session.state), "last_reply": encode_reply(session.last_reply)}


def decode_session(record: dict, assistant) -> Session:
    """A Session on ``assistant`` with the stored state; raises ValueError on a corrupt record."""
    if not isinstance(record, dict) or not isinstance(record.get("state"), dict):
        raise ValueError("not a stored session")
    session = Session(assistant)
    session.state = decode_state(record["state"], assistant)
    session.last_reply = decode_reply(record.get("last_reply"))
    return session


def user_turns(record: dict) -> int:
    return sum(1 for turn in record.get("state", {}).get("history", []) if turn.get("role") == "user")


__all__ = ["encode_session", "decode_session", "encode_state", "decode_state", "user_turns", "VERSION"]
