"""What ``kmed data prepare`` found, loaded, skipped (with reasons), deduplicated and wrote.

Every skipped file or record is counted under a reason code and logged; the report keeps a few
example files per reason, and ``skipped.jsonl`` in the output folder lists every one of them.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field

log = logging.getLogger("kmed.data.aihub")
log.addHandler(logging.NullHandler())  # the CLI adds a file handler; the API stays quiet

# Reason code → what a user reads. Codes are stable (tests and reports key on them).
REASONS: dict[str, str] = {
    "bad_json": "JSON 형식이 깨졌어요",
    "bad_encoding": "글자 인코딩을 알 수 없어요 (UTF-8/CP949가 아니에요)",
    "not_object": "JSON 최상위가 객체(또는 객체 목록)가 아니에요",
    "unknown_format": "어느 AI Hub 데이터셋 형식인지 알 수 없어요",
    "missing_field": "필수 항목이 비어 있거나 없어요",
    "bad_field": "항목 값의 형식이 예상과 달라요",
    "mcq_unparsed": "객관식 보기나 정답 번호를 찾지 못했어요 (주관식 문항으로 사용해요)",
    "no_answer_in_folder": "같은 질병·의도 폴더에 답변 파일이 없어요",
    "no_solution": "풀이(해설)가 없어 증류 데이터로 쓸 수 없어요",
    "empty_dialogue": "대화 턴이 없어요",
    "bad_zip": "zip 파일이 손상되었거나 열 수 없어요",
    "bad_zip_entry": "zip 안의 파일을 읽을 수 없어요",
    "missing_part": "분할 zip(.zip.partN)의 일부가 없어요",
    "unsupported_split_zip": "이 분할 압축 형식(.z01 등)은 지원하지 않아요. 압축을 풀어 주세요",
    "shadowed_folder": "같은 이름의 zip이 있어 풀린 폴더는 건너뛰었어요",
    "duplicate_id": "같은 ID가 이미 있어 파일 경로로 구분했어요",
    "read_error": "파일을 읽을 수 없어요",
}
# Reasons that are notes, not losses: the record is still used.
NOTES = {"mcq_unparsed", "duplicate_id"}
MAX_EXAMPLES = 5


@dataclass
class Skip:
    reason: str
    file: str
    detail: str = ""

    def to_dict(self) -> dict:
        return {"reason": self.reason, "message": REASONS.get(self.reason, self.reason), "file": self.file, "detail": self.detail}


@dataclass
class Report:
    found: Counter = field(default_factory=Counter)  # dataset → JSON files seen
    loaded: Counter = field(default_factory=Counter)  # "dataset/kind" → records
    skips: list[Skip] = field(default_factory=list)
    deduplicated: Counter = field(default_factory=Counter)  # "exact" | "near" → records removed
    per_split: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))  # dataset → split → n
    written: dict[str, int] = field(default_factory=dict)  # output file → lines
    notes: list[str] = field(default_factory=list)
    pii: Counter = field(default_factory=Counter)  # kind → redactions
    duplicate_pairs: list[tuple[str, str]] = field(default_factory=list)  # (removed uid, kept uid)
    mix: dict = field(default_factory=dict)

    def skip(self, reason: str, file: str, detail: str = "") -> None:
        self.skips.append(Skip(reason, file, detail))
        level = logging.INFO if reason in NOTES else logging.WARNING
        log.log(level, "%s: %s%s", file, REASONS.get(reason, reason), f" ({detail})" if detail else "")

    def note(self, message: str) -> None:
        self.notes.append(message)
        log.warning(message)

    def skipped_by_reason(self) -> Counter:
        return Counter(s.reason for s in self.skips)

    def to_dict(self) -> dict:
        by_reason: dict[str, dict] = {}
        for skip in self.skips:
            entry = by_reason.setdefault(skip.reason, {"message": REASONS.get(skip.reason, skip.reason), "count": 0, "examples": []})
            entry["count"] += 1
            if len(entry["examples"]) < MAX_EXAMPLES:
                entry["examples"].append(skip.file + (f" ({skip.detail})" if skip.detail else ""))
        return {
            "found": dict(sorted(self.found.items())),
            "loaded": dict(sorted(self.loaded.items())),
            "skipped": dict(sorted(by_reason.items())),
            "deduplicated": dict(sorted(self.deduplicated.items())),
            "duplicate_examples": [list(pair) for pair in self.duplicate_pairs[:MAX_EXAMPLES * 2]],
            "pii_redacted": dict(sorted(self.pii.items())),
            "per_split": {k: dict(sorted(v.items())) for k, v in sorted(self.per_split.items())},
            "mix": self.mix,
            "written": dict(sorted(self.written.items())),
            "notes": list(self.notes),
        }
