"""수학 교과 문제 풀이과정 (71859): problems with worked solutions, for distillation text.

Schema (aihub_formats.md §6): ``learning_data_info`` with 문항/정답/오답/해설, each as (텍스트)
and (이미지) classes; the text may live only in the (이미지) class, and LaTeX is kept as is.
Multiple-choice options are the circled digits across 오답 and 정답. A problem without a solution
(해설) is skipped: solution steps are what the compression mix needs.
"""

from __future__ import annotations

from kmed.data.aihub.choices import CIRCLED, answer_label, split_circled, strip_label
from kmed.data.aihub.loading import FileContext, FormatError, Loader, register_loader
from kmed.data.aihub.records import Exercise, Record
from kmed.data.aihub.report import Report
from kmed.data.aihub.school import (
    block_text,
    grade_label,
    read_required,
    record_fields,
    subject_claim,
)

DATASET = "math_solution"


@register_loader(30)
class MathSolutionLoader(Loader):
    def sniff(self, obj: dict, ctx: FileContext) -> str | None:
        named, info = subject_claim(obj, "수학", "S3")
        if info is None:
            return None
        if named:
            return DATASET
        if info["subject"] or info["name"].startswith("S2"):
            return None
        if ctx.dataset_hint == DATASET:
            return DATASET
        suffixed = any("(텍스트)" in str(i.get("class_name", "")) for i in obj.get("learning_data_info") or [] if isinstance(i, dict))
        return DATASET if suffixed and not ctx.dataset_hint else None

    def load(self, obj: dict, ctx: FileContext, dataset: str, report: Report) -> list[Record]:
        info, blocks, (problem,) = read_required(obj, ("문항",))
        solution = block_text(blocks, "해설")
        correct = block_text(blocks, "정답")
        if not solution:
            raise FormatError("no_solution", info["name"] or ctx.stem)
        choice = info["problem_type"] == "객관식" or (correct[:1] != "" and correct[:1] in CIRCLED)
        options = split_circled(block_text(blocks, "오답") + "\n" + correct) if choice else {}
        label = answer_label(correct, options) if options else ""
        answer = f"{label}) {options[label]}" if label and options.get(label) else strip_label(correct)
        return [
            Exercise(
                **record_fields(DATASET, "ex", info, ctx),
                subject="수학",
                problem=problem,
                options=options if len(options) >= 2 else {},
                answer=answer,
                solution=solution,
                grade=grade_label(info),
                difficulty=info["difficulty"],
            )
        ]
