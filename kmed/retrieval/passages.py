"""Passages and hits: what the retrievers index (``Passage``) and what they return (``Hit``).

``Passage`` and its JSON-lines reader and writer live on the data floor (``kmed.data.passages``),
where the KB and AI Hub pipelines build them; they are named here too for the retrieval modules.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from kmed.data.passages import Passage, read_jsonl, write_jsonl

__all__ = ["Hit", "Passage", "read_jsonl", "write_jsonl"]


@dataclass
class Hit:
    """A retrieved passage with its fused score. ``Assistant.search`` returns these."""

    id: str
    title: str
    text: str
    score: float
    metadata: dict = field(default_factory=dict)

    @classmethod
    def of(cls, passage: Passage, score: float) -> Hit:
        """A passage as one retriever's hit (its metadata shared, not copied)."""
        return cls(passage.id, passage.title, passage.text, score, passage.metadata)

    def to_dict(self) -> dict:
        return asdict(self)
