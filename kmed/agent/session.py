"""One multi-turn consultation: the state it keeps and the stream of one turn.

A turn: clean and redact the input → ``analyse`` it (entities, profile, every triage layer) → the
declared policy (``kmed.agent.policy.POLICY``: self-harm, emergency, greeting, injection, harmful,
out-of-scope, clarify) → otherwise ``kmed.agent.answer``. An emergency raised at any point is never
downgraded by a later turn. An exception inside a turn returns an apology and keeps the session.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from kmed.agent import guardrails as g
from kmed.agent import texts
from kmed.agent.answer import answer
from kmed.agent.policy import analyse, run_policy
from kmed.agent.profile import Profile
from kmed.agent.red_flags import RedFlagMatch
from kmed.agent.reply import Reply
from kmed.agent.triage import LEVEL_RANK, Escalation, from_rule

log = logging.getLogger(__name__)


@dataclass
class SessionState:
    mentioned: dict[str, str] = field(default_factory=dict)  # non-negated entity id -> type, first mention first
    negated: set[str] = field(default_factory=set)
    profile: Profile = field(default_factory=Profile)
    clarify_streak: int = 0
    flags: list[RedFlagMatch] = field(default_factory=list)  # every red-flag rule raised so far
    escalations: list[Escalation] = field(default_factory=list)  # KG and classifier escalations so far
    history: list[dict] = field(default_factory=list)  # redacted text only

    def symptoms(self) -> list[str]:
        return [i for i, t in self.mentioned.items() if t == "symptom"]

    def worst_escalation(self) -> Escalation | None:
        raised = [*(from_rule(f.rule) for f in self.flags), *self.escalations]
        return max(raised, key=lambda e: LEVEL_RANK[e.level], default=None)


class Session:
    def __init__(self, assistant):
        self.assistant = assistant
        self.state = SessionState()
        self.last_reply: Reply | None = None

    @classmethod
    def restore(cls, assistant, state: SessionState, last_reply: Reply | None = None) -> Session:
        """A consultation resumed from stored state (kmed.serve keeps sessions across restarts)."""
        session = cls(assistant)
        session.state = state
        session.last_reply = last_reply
        return session

    def reset(self) -> None:
        self.state = SessionState()
        self.last_reply = None

    def ask(self, message: str) -> Reply:
        reply = None
        for event, value in self.stream(message):
            if event == "reply":
                reply = value
        return reply

    def stream(self, message: str) -> Iterator[tuple[str, object]]:
        """Yields ("token", text) while generating, then ("reply", Reply)."""
        started = time.perf_counter()
        try:
            turn = analyse(self, g.clean_input(message))
            reply = run_policy(turn)
            if reply is None:
                reply = yield from answer(turn)
        except Exception:  # noqa: BLE001 - a crash in one turn must not end the consultation
            log.exception("turn failed")
            reply = Reply(answer=texts.INTERNAL_ERROR, kind="error")
        self._keep_escalation(reply)
        reply.timings["total_ms"] = round((time.perf_counter() - started) * 1000, 2)
        self.last_reply = reply
        self.state.history.append({"role": "assistant", "content": reply.answer})
        yield "reply", reply

    def _keep_escalation(self, reply: Reply) -> None:
        """An emergency or urgent finding raised earlier in the session is never downgraded later."""
        worst = self.state.worst_escalation()
        if worst is None or reply.kind == "empty" or (reply.refused and reply.kind != "emergency"):
            return
        if LEVEL_RANK[reply.triage.level] >= LEVEL_RANK[worst.level]:
            return
        reply.triage.level = worst.level
        reply.kind = "emergency"  # the reminder comes first: this reply escalates
        reply.triage.reasons = list(dict.fromkeys([*reply.triage.reasons, worst.name]))
        reply.triage.hotlines = list(dict.fromkeys([*reply.triage.hotlines, *worst.hotlines]))
        reminder = texts.STILL_EMERGENCY if worst.level == "emergency" else texts.STILL_URGENT
        reply.answer = reminder.format(reason=worst.name) + "\n" + reply.answer
