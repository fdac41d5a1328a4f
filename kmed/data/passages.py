"""Passages: the unit the retrievers index and the agent cites, built by the KB chunker and the AI Hub pipeline.

A passage is one short, sentence-aligned piece of text with metadata. It lives on the data floor so
that what builds passages (``kmed.data.aihub``) and what indexes them (``kmed.retrieval``) share it
without the data floor importing retrieval. Metadata keys used across kmed (all optional except
``source``):

- ``entity_ids`` / ``entity_names``: KB ids the passage is about (the owning entry first);
- ``section``: e.g. ``overview``, ``self_care``; ``section_title``: its Korean title;
- ``entity_type``: condition | symptom | drug | department | test | red_flag | kg_fact | aihub;
- ``departments``: department ids; ``source``: human-readable source names joined by ", ";
- ``source_ids``: KB source ids; ``origin``: the file it came from; ``lang``: "ko" or "en".
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from kmed import artifacts


@dataclass
class Passage:
    id: str
    title: str
    text: str
    metadata: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Passage:
        return cls(id=str(data["id"]), title=data.get("title", ""), text=data["text"], metadata=data.get("metadata", {}))


def write_jsonl(passages: Iterable[Passage], path: Path) -> int:
    """One passage a JSON line, written atomically; returns how many."""
    return artifacts.write_jsonl(Path(path), (passage.to_dict() for passage in passages))


def read_jsonl(path: Path) -> Iterator[Passage]:
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield Passage.from_dict(json.loads(line))
