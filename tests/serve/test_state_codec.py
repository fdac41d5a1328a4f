"""A session stored and restored answers exactly as the live one would; new SessionState fields are tolerated."""

from __future__ import annotations

import dataclasses
import json

from kmed.agent.session import SessionState
from kmed.serve import state_codec
from kmed.serve.state_codec import decode_session, encode_session, encode_state, user_turns


@dataclasses.dataclass(frozen=True)
class Tag:
    level: str
    hotlines: tuple[str, ...] = ("119",)
    note: str | None = None


def _roundtrip(session, assistant):
    return decode_session(json.loads(json.dumps(encode_session(session), ensure_ascii=False)), assistant)


def test_restored_session_continues_like_the_live_one(assistant):
    live = assistant.session()
    for message in ["배가 아파요", "어제부터요", "가슴이 쥐어짜듯 아프고 식은땀이 나요"]:
        live.ask(message)
    restored = _roundtrip(live, assistant)
    assert restored.state.mentioned == live.state.mentioned
    assert restored.state.negated == live.state.negated
    assert restored.state.profile == live.state.profile
    assert [f.rule.id for f in restored.state.flags] == ["rf.acute_chest_pain"]
    assert restored.last_reply.kind == "emergency"
    follow_up = "머리도 조금 아파요"
    assert restored.ask(follow_up).to_dict() == live.ask(follow_up).to_dict()
    # the earlier emergency is never downgraded, also after a restore
    assert restored.last_reply.triage.level == "emergency"


def test_clarify_streak_and_negation_survive(assistant):
    live = assistant.session()
    live.ask("열은 없고 기침이 나요")
    restored = _roundtrip(live, assistant)
    assert restored.state.negated == live.state.negated and restored.state.negated
    assert restored.state.clarify_streak == live.state.clarify_streak
    assert restored.ask("사흘째요").to_dict() == live.ask("사흘째요").to_dict()


def test_history_is_redacted_and_counted(assistant):
    session = assistant.session()
    session.ask("제 번호는 010-1234-5678 이에요. 머리가 아파요")
    record = encode_session(session)
    text = json.dumps(record, ensure_ascii=False)
    assert "010-1234-5678" not in text and "[전화번호]" in text
    assert user_turns(record) == 1


def test_unknown_rule_is_dropped_and_missing_fields_default(assistant):
    session = assistant.session()
    session.ask("가슴이 쥐어짜듯 아프고 식은땀이 나요")
    record = encode_session(session)
    record["state"]["flags"].append({"rule": "rf.removed_rule", "evidence": []})
    del record["state"]["clarify_streak"]
    record["state"]["field_from_the_future_removed_again"] = 42
    restored = decode_session(record, assistant)
    assert [f.rule.id for f in restored.state.flags] == ["rf.acute_chest_pain"]
    assert restored.state.clarify_streak == 0


def test_fields_added_to_session_state_later_round_trip(assistant, monkeypatch):
    """Another engineer may add fields to SessionState: plain ones are stored, old records get defaults."""

    @dataclasses.dataclass
    class NewState(SessionState):
        turn_count: int = 0
        topics: set = dataclasses.field(default_factory=set)
        weights: dict = dataclasses.field(default_factory=dict)
        tags: list[Tag] = dataclasses.field(default_factory=list)

    monkeypatch.setattr(state_codec, "SessionState", NewState)
    state = NewState(turn_count=3, topics={"b", "a"}, weights={"x": 0.5}, tags=[Tag("urgent", ("119", "1339"))])
    state.mentioned["sym.headache"] = "symptom"
    data = json.loads(json.dumps(encode_state(state)))
    assert data["topics"] == ["a", "b"]
    restored = state_codec.decode_state(data, assistant)
    assert (restored.turn_count, restored.topics, restored.weights) == (3, {"a", "b"}, {"x": 0.5})
    assert restored.tags == [Tag("urgent", ("119", "1339"))]  # rebuilt from the annotation, tuple included
    old_record = encode_state(SessionState())  # written before the fields existed
    restored = state_codec.decode_state(old_record, assistant)
    assert (restored.turn_count, restored.topics, restored.tags) == (0, set(), [])
    data["tags"] = [{"wrong": 1}]  # a stored value that no longer fits: default, not a crash
    assert state_codec.decode_state(data, assistant).tags == []


def test_corrupt_record_is_an_error(assistant):
    import pytest

    with pytest.raises(ValueError):
        decode_session({"v": 1, "state": "garbage"}, assistant)
