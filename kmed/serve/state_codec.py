"""Plain-JSON form of a consultation, so a session survives a server restart.

    record = encode_session(session)            # {"v": 1, "state": {...}, "last_reply": {...}}
    session = decode_session(record, assistant)  # a kmed.agent.session.Session, ready for the next turn

Only ``SessionState``'s public fields are read, through ``dataclasses.fields()``, so fields added to
it later do not break the codec:
- a new field built from plain values, sets, tuples, dicts and dataclasses of those is stored as
  JSON and rebuilt from its type annotation (``list[Escalation]`` comes back as Escalation objects);
- a stored value that no longer fits its field's type restarts from the default, with a warning;
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
import types
import typing
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


def _typed(tp: Any, value: Any) -> Any:
    """JSON back into the annotated type: dataclasses (nested), lists, sets, tuples, dicts, Optional."""
    if value is None:
        return None
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if not isinstance(value, dict):
            raise TypeError(f"{tp.__name__} expects an object")
        hints = typing.get_type_hints(tp)
        return tp(**{f.name: _typed(hints.get(f.name, Any), value[f.name])
                     for f in dataclasses.fields(tp) if f.init and f.name in value})
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        return _typed(options[0], value) if len(options) == 1 else value
    if origin in (list, set, frozenset) or tp in (list, set, frozenset):
        items = [_typed(args[0], v) if args else v for v in value]
        return (origin or tp)(items)
    if origin is tuple or tp is tuple:
        if args and (len(args) == 2 and args[1] is Ellipsis):
            return tuple(_typed(args[0], v) for v in value)
        return tuple(value)
    if (origin is dict or tp is dict) and isinstance(value, dict):
        return {k: _typed(args[1], v) if args else v for k, v in value.items()}
    return value


def _field_types() -> dict[str, Any]:
    try:
        return typing.get_type_hints(SessionState)
    except Exception:  # noqa: BLE001 - an unresolvable annotation: fall back to the defaults' shapes
        return {}


def _like(default: Any, stored: Any) -> Any:
    """Stored JSON shaped like the field's default, when its annotation cannot be read."""
    if dataclasses.is_dataclass(default) and isinstance(stored, dict):
        known = {f.name for f in dataclasses.fields(default) if f.init}
        return type(default)(**{k: _like(getattr(default, k), v) for k, v in stored.items() if k in known})
    if isinstance(default, (set, frozenset, tuple)) and isinstance(stored, list):
        return type(default)(stored)
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
    hints = _field_types()
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
            try:
                value = _typed(hints[f.name], stored) if f.name in hints else _like(getattr(state, f.name), stored)
            except (TypeError, ValueError, KeyError, AttributeError):
                log.warning("stored session field %s does not fit its type; it restarts from its default", f.name)
                continue
            setattr(state, f.name, value)
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
    return Session.restore(assistant, decode_state(record["state"], assistant), decode_reply(record.get("last_reply")))


def user_turns(record: dict) -> int:
    return sum(1 for turn in record.get("state", {}).get("history", []) if turn.get("role") == "user")


__all__ = ["encode_session", "decode_session", "encode_state", "decode_state", "user_turns", "VERSION"]
