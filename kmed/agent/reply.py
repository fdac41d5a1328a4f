"""The public reply contract (ARCHITECTURE.md): keep these keys stable."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class Citation:
    id: str
    title: str
    source: str
    snippet: str


@dataclass
class Triage:
    level: str  # emergency | urgent | routine | self_care | info
    reasons: list[str] = field(default_factory=list)
    hotlines: list[str] = field(default_factory=list)


@dataclass
class Reply:
    answer: str
    citations: list[Citation] = field(default_factory=list)
    triage: Triage = field(default_factory=lambda: Triage("info"))
    entities: list[dict] = field(default_factory=list)
    departments: list[str] = field(default_factory=list)
    refused: bool = False
    # Not part of to_dict(): diagnostics for evaluation and the CLI.
    kind: str = "answer"  # answer | clarify | emergency | refusal | empty | error
    notices: list[str] = field(default_factory=list)
    timings: dict = field(default_factory=dict)
    verification: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "answer": self.answer,
            "citations": [asdict(c) for c in self.citations],
            "triage": asdict(self.triage),
            "entities": self.entities,
            "departments": self.departments,
            "refused": self.refused,
        }
