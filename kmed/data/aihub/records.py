"""Unified records every AI Hub loader produces: Document, QA, Dialogue, Exercise.

Each record carries a ``Provenance`` (dataset key, AI Hub split, file inside the download, native id)
and, after splitting, ``split`` (our train/validation/test). ``uid`` is stable across runs: it is
built from the dataset key and the id AI Hub gives the item, never from load order.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

# Dataset keys, their AI Hub dataSetSn and Korean titles. Keys are what configs and outputs use.
DATASETS: dict[str, tuple[str, str]] = {
    "essential": ("71875", "필수의료 의학지식"),
    "specialist": ("71874", "전문 의학지식"),
    "healthcare_qa": ("71762", "초거대AI 헬스케어 질의응답"),
    "korean_passage": ("71857", "국어 교과 지문형 문제"),
    "math_solution": ("71859", "수학 교과 문제 풀이과정"),
    "interview": ("", "인터뷰 멀티턴"),
}

# 필수의료/전문 의학지식 ``domain`` codes → specialty (AI Hub README; the same table for both datasets).
DOMAINS: dict[int, str] = {
    1: "외과",
    2: "예방의학",
    3: "정신건강의학과",
    4: "신경과/신경외과",
    5: "피부과",
    6: "안과",
    7: "이비인후과",
    8: "비뇨의학과",
    9: "방사선종양학과",
    10: "병리과",
    11: "마취통증의학과",
    12: "의료법규",
    13: "기타 (약리/병리/해부)",
    14: "산부인과",
    15: "소아청소년과",
    16: "응급의학과",
    17: "내과",
}

Q_TYPES = {1: "mcq", 2: "short", 3: "descriptive"}
SPLITS = ("train", "validation", "test")


def dataset_title(key: str) -> str:
    return DATASETS.get(key, ("", key))[1]


@dataclass(frozen=True)
class Provenance:
    dataset: str  # a DATASETS key
    aihub_split: str  # "Training" | "Validation" | "" (unknown)
    file: str  # path inside the user's download, e.g. ".../TL_내과.zip/필수_1.json"
    id: str  # the id AI Hub gives the item (qa_id, c_id, fileName, source_data_name)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Record:
    uid: str
    prov: Provenance
    domain: str = ""  # stratum for splitting: specialty, disease category or school grade
    split: str = ""  # ours, set by kmed.data.aihub.split
    meta: dict[str, str] = field(default_factory=dict)  # dataset-specific labels (disease, intention, grade …)

    kind = "record"

    def dedupe_text(self) -> str:
        raise NotImplementedError

    def to_dict(self) -> dict:
        data = asdict(self)
        data["kind"] = self.kind
        return data


@dataclass
class Document(Record):
    title: str = ""
    text: str = ""
    lang: str = "ko"
    department: str = ""
    source_kind: str = ""  # e.g. "의학 교과서", from the TS_ zip name or the ``source`` code
    source_spec: str = ""
    year: str = ""

    kind = "document"

    def dedupe_text(self) -> str:
        return self.text


@dataclass
class QA(Record):
    question: str = ""  # the stem only; options live in ``options``
    answer: str = ""  # full answer text as given (for MCQ: "3) 약물 C" plus any explanation)
    q_type: str = "descriptive"  # mcq | short | descriptive | healthcare | passage_mcq
    options: dict[str, str] = field(default_factory=dict)  # "1" -> option text
    answer_label: str = ""  # MCQ: the correct option number as a string
    explanation: str = ""
    context: str = ""  # a reading passage (국어) the question is about
    department: str = ""
    lang: str = "ko"

    kind = "qa"

    def dedupe_text(self) -> str:
        options = " ".join(f"{k}) {v}" for k, v in sorted(self.options.items()))
        return f"{self.context}\n{self.question}\n{options}\n{self.answer}"

    def answer_text(self) -> str:
        """The answer in words: for MCQ, the correct option's text when it is known."""
        if self.answer_label and self.answer_label in self.options:
            return self.options[self.answer_label]
        return self.answer


@dataclass
class Dialogue(Record):
    topic: str = ""
    turns: list[tuple[str, str]] = field(default_factory=list)  # (role, text), role: user | assistant

    kind = "dialogue"

    def dedupe_text(self) -> str:
        return "\n".join(text for _, text in self.turns)


@dataclass
class Exercise(Record):
    subject: str = ""
    problem: str = ""
    options: dict[str, str] = field(default_factory=dict)
    answer: str = ""
    solution: str = ""
    grade: str = ""
    difficulty: str = ""

    kind = "exercise"

    def dedupe_text(self) -> str:
        return f"{self.problem}\n{self.solution}\n{self.answer}"


def make_uid(dataset: str, kind: str, native_id: str) -> str:
    return f"{dataset}:{kind}:{native_id}"
