"""Multi-turn interview dialogues, with field paths set in ``configs/data_mix.yaml › interview``.

No AI Hub sample of this data has been verified (aihub_formats.md §4), so where the turns live is
configuration, not code. The defaults follow the one public script that reads it:

    {"interview_info": {"topic": {"topic": "…"}},
     "script": [{"question_info": {"question_context": "…"},
                 "answer_info": [{"answer_context": "…"}]}, …]}

A path is dotted keys with optional list indexes: ``answer_info[0].answer_context``. Questions become
``user`` turns and answers ``assistant`` turns.
"""

from __future__ import annotations

import re

from kmed.data.aihub.config import InterviewConfig, PipelineConfig
from kmed.data.aihub.loading import FileContext, FormatError, Loader, register_loader
from kmed.data.aihub.records import Dialogue, Provenance, Record, make_uid
from kmed.data.aihub.report import Report
from kmed.data.aihub.text import clean_text

DATASET = "interview"
_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def get_path(obj: object, path: str) -> object:
    """``get_path({"a": [{"b": 1}]}, "a[0].b") == 1``; ``None`` when any step is missing."""
    for key, index in _STEP.findall(path):
        if key:
            obj = obj.get(key) if isinstance(obj, dict) else None
        else:
            obj = obj[int(index)] if isinstance(obj, list) and int(index) < len(obj) else None
        if obj is None:
            return None
    return obj


@register_loader(50)
class InterviewLoader(Loader):
    def __init__(self, config: InterviewConfig):
        self.config = config

    @classmethod
    def from_config(cls, config: PipelineConfig) -> InterviewLoader:
        return cls(config.interview)

    def sniff(self, obj: dict, ctx: FileContext) -> str | None:
        turns = get_path(obj, self.config.turns)
        if not (isinstance(turns, list) and turns and isinstance(turns[0], dict)):
            return None
        if get_path(turns[0], self.config.question) is None and ctx.dataset_hint != DATASET:
            return None
        return DATASET

    def load(self, obj: dict, ctx: FileContext, dataset: str, report: Report) -> list[Record]:
        turns: list[tuple[str, str]] = []
        for item in get_path(obj, self.config.turns) or []:
            question = clean_text(str(get_path(item, self.config.question) or ""))
            answer = clean_text(str(get_path(item, self.config.answer) or ""))
            if question:
                turns.append(("user", question))
            if answer:
                turns.append(("assistant", answer))
        if not any(role == "assistant" for role, _ in turns):
            raise FormatError("empty_dialogue", ctx.stem)
        topic = clean_text(str(get_path(obj, self.config.topic) or ""))
        native = str(obj.get("id") or obj.get("dialogue_id") or ctx.stem)
        return [
            Dialogue(
                uid=make_uid(DATASET, "dlg", native),
                prov=Provenance(DATASET, ctx.aihub_split, ctx.path, native),
                domain=topic,
                topic=topic,
                turns=turns,
            )
        ]
