"""Multiple-choice parsing shared by the medical, 국어 and 수학 loaders.

    split_question("65세 남성 … 치료는?\\n1) 약물 A\\n2) 약물 B")  # ("65세 남성 … 치료는?", {"1": "약물 A", "2": "약물 B"})
    answer_label("3) 약물 C", options)                              # "3"
    answer_label("③", options)                                     # "3"
    split_circled("① 2 ② -4 ④ 8")                                  # {"1": "2", "2": "-4", "4": "8"}
"""

from __future__ import annotations

import re

from kmed.data.aihub.text import norm_key

CIRCLED = "①②③④⑤⑥⑦⑧⑨⑩"
_LINE_OPTION = re.compile(rf"^\s*(?:(\d{{1,2}})\s*\)|\(\s*(\d{{1,2}})\s*\)|([{CIRCLED}]))\s*(.*)$")
_INLINE_OPTION = re.compile(rf"(?:(?<=\s)|^)(?:(\d{{1,2}})\)|([{CIRCLED}]))\s*")
_CIRCLED_SPLIT = re.compile(rf"([{CIRCLED}])\s*")
_LABEL = re.compile(rf"^\s*(?:정답\s*(?:은|는)?\s*[:：]?\s*)?(?:(\d{{1,2}})\s*(?:\)|번|\.(?!\d))|\(\s*(\d{{1,2}})\s*\)|([{CIRCLED}]))")


def circled_to_number(char: str) -> str:
    return str(CIRCLED.index(char) + 1)


def _label_of(groups: tuple[str | None, ...]) -> str:
    for group in groups:
        if group:
            return circled_to_number(group) if group in CIRCLED else str(int(group))
    return ""


def _sequential(labels: list[str]) -> bool:
    return labels == [str(i) for i in range(1, len(labels) + 1)]


def split_question(question: str) -> tuple[str, dict[str, str]]:
    """Stem and options "1".."n" from a question holding ``1) …`` (or ①…) options; ``{}`` if none."""
    lines = question.split("\n")
    stem_lines: list[str] = []
    options: dict[str, str] = {}
    last = ""
    for line in lines:
        match = _LINE_OPTION.match(line)
        label = _label_of(match.groups()[:3]) if match else ""
        if match and label == str(len(options) + 1):
            last = label
            options[label] = match.group(4).strip()
        elif last:
            options[last] = f"{options[last]} {line.strip()}".strip()
        else:
            stem_lines.append(line)
    if len(options) >= 2:
        return "\n".join(stem_lines).strip(), options
    return _split_inline(question)


def _split_inline(question: str) -> tuple[str, dict[str, str]]:
    """Options written on one line: ``… 치료는? 1) A 2) B 3) C``."""
    matches = list(_INLINE_OPTION.finditer(question))
    # Take the first run of labels 1, 2, 3 … in order.
    for begin in range(len(matches)):
        if _label_of(matches[begin].groups()) != "1":
            continue
        run = [matches[begin]]
        for match in matches[begin + 1 :]:
            if _label_of(match.groups()) == str(len(run) + 1):
                run.append(match)
        if len(run) >= 2:
            options = {}
            for i, match in enumerate(run):
                end = run[i + 1].start() if i + 1 < len(run) else len(question)
                options[str(i + 1)] = question[match.end() : end].strip()
            return question[: run[0].start()].strip(), options
    return question.strip(), {}


def split_circled(text: str) -> dict[str, str]:
    """``① a ② b`` (one line or several) → {"1": "a", "2": "b"}."""
    pieces = _CIRCLED_SPLIT.split(text)
    options: dict[str, str] = {}
    for i in range(1, len(pieces) - 1, 2):
        options[circled_to_number(pieces[i])] = pieces[i + 1].strip()
    return options


def answer_label(answer: str, options: dict[str, str]) -> str:
    """The option number an answer picks ("3) …", "3번", "③", "정답: 3"), or its text matching one option."""
    match = _LABEL.match(answer)
    if match:
        label = _label_of(match.groups())
        if not options or label in options:
            return label
    key = norm_key(answer.split("\n", 1)[0])
    if key:
        matching = [label for label, text in options.items() if norm_key(text) == key]
        if len(matching) == 1:
            return matching[0]
    return ""


def strip_label(answer: str) -> str:
    """The answer without its leading option label."""
    match = _LABEL.match(answer)
    return answer[match.end() :].strip() if match else answer.strip()


def format_options(options: dict[str, str]) -> str:
    return "\n".join(f"{label}) {text}" for label, text in sorted(options.items(), key=lambda item: int(item[0])))
