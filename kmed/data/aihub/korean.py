"""국어 교과 지문형 문제 (71857): a reading passage, a question, the answer and the wrong options.

Schema (aihub_formats.md §5): ``learning_data_info`` blocks 지문 / 문항 / 정답 / 오답 / 해설; 정답
starts with a circled digit (``③ …``) and 오답 holds the other options on separate lines. A 지문
may span several ``class_info_list`` entries (joined by newlines). Records become passage QA with
the passage as context: the base-model validation part of the mix.
"""

from __future__ import annotations

from kmed.data.aihub.choices import answer_label, split_circled, strip_label
from kmed.data.aihub.loading import FileContext, Loader, register_loader
from kmed.data.aihub.records import QA, Record
from kmed.data.aihub.report import Report
from kmed.data.aihub.school import block_text, read_blocks, read_required, record_fields, subject_claim

DATASET = "korean_passage"


@register_loader(40)
class KoreanPassageLoader(Loader):
    def sniff(self, obj: dict, ctx: FileContext) -> str | None:
        named, info = subject_claim(obj, "국어", "S2")
        if named or (info is not None and ctx.dataset_hint == DATASET):
            return DATASET
        # A school file that names no subject and has no hint: a reading passage (지문) makes it one.
        unnamed = info is not None and not (info["subject"] or ctx.dataset_hint)
        return DATASET if unnamed and "지문" in read_blocks(obj) else None

    def load(self, obj: dict, ctx: FileContext, dataset: str, report: Report) -> list[Record]:
        info, blocks, (passage, stem, correct) = read_required(obj, ("지문", "문항", "정답"))
        options = split_circled(block_text(blocks, "오답") + "\n" + correct)
        label = answer_label(correct, options)
        if not (label and len(options) >= 2):
            report.skip("mcq_unparsed", ctx.path, info["name"])
            options, label = {}, ""
        return [
            QA(
                **record_fields(DATASET, "qa", info, ctx),
                question=stem,
                answer=strip_label(correct),
                q_type="passage_mcq" if label else "passage_short",
                options=options,
                answer_label=label,
                explanation=block_text(blocks, "해설"),
                context=passage,
            )
        ]
