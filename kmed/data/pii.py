"""Personal data scrubbing for Korean text: 주민등록번호, phone numbers and e-mail addresses.

    >>> redact("연락처 010-1234-5678, 메일 hong@example.com")
    ('연락처 [전화번호], 메일 [이메일]', ['phone', 'email'])

Used on AI Hub data before it becomes passages or training text, and by the agent's guardrails on
user input. ``kinds`` lists one entry per redaction, in text order.

주민등록번호 (RRN): six birth-date digits, then a gender/century digit 1–8 and six more digits.
- An unhyphenated 13-digit number is redacted only when its birth date is valid and its checksum
  passes, so order numbers and timestamps survive.
- A hyphenated ``YYMMDD-NNNNNNN`` with a valid birth date is redacted even when the checksum fails:
  numbers issued since October 2020 no longer carry a checksum, and a leak costs more than an
  over-redaction.
Phone numbers: mobile (010, 011, 016–019, with or without separators), area codes and 070/050x
(with separators), and +82 forms. Public service numbers (119, 1339, 1588-xxxx) are kept: they are
what a medical answer should show.
"""

from __future__ import annotations

import re

PLACEHOLDERS = {"rrn": "[주민등록번호]", "phone": "[전화번호]", "email": "[이메일]"}

# ASCII-only boundaries: Hangul counts as \w, and a particle may follow directly ("kim@a.com이에요").
_EMAIL = re.compile(r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![A-Za-z0-9-])")
_RRN = re.compile(r"(?<![\d-])(\d{2})(\d{2})(\d{2})(\s?[-–]\s?|)([1-8]\d{6})(?![\d-])")
_SEP = r"[-.\s)]"
_PHONE = re.compile(
    r"(?<![\d+-])(?:"
    r"\+82[-\s]?\(?0?(?:1[016789]|2|[3-6][1-5]|70)\)?[-\s]?\d{3,4}[-\s]?\d{4}"  # +82 10-1234-5678
    r"|01[016789](?:-|\.|\s)?\d{3,4}(?:-|\.|\s)?\d{4}"  # mobile, separators optional
    rf"|\(?0(?:2|[3-6][1-5]|70|50[2-8])\)?{_SEP}\s?\d{{3,4}}[-.\s]\d{{4}}"  # area code / VoIP, separated
    r")(?![\d-])"
)
_RRN_WEIGHTS = (2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5)


def rrn_checksum_ok(digits: str) -> bool:
    """The legacy RRN check digit (and the foreign-resident variant for gender digits 5–8)."""
    if len(digits) != 13 or not digits.isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(digits[:12], _RRN_WEIGHTS, strict=True))
    last = int(digits[12])
    if (11 - total % 11) % 10 == last:
        return True
    return digits[6] in "5678" and (13 - total % 11) % 10 == last


def _birth_date_ok(month: str, day: str) -> bool:
    return 1 <= int(month) <= 12 and 1 <= int(day) <= 31


def _rrn_spans(text: str) -> list[tuple[int, int, str]]:
    spans = []
    for match in _RRN.finditer(text):
        _, month, day, separator, rest = match.groups()
        if not _birth_date_ok(month, day):
            continue
        digits = match.group(1) + month + day + rest
        if rrn_checksum_ok(digits) or separator.strip():
            spans.append((match.start(), match.end(), "rrn"))
    return spans


def _spans(text: str) -> list[tuple[int, int, str]]:
    found = [(m.start(), m.end(), "email") for m in _EMAIL.finditer(text)]
    found += _rrn_spans(text)
    found += [(m.start(), m.end(), "phone") for m in _PHONE.finditer(text)]
    found.sort(key=lambda span: (span[0], -(span[1] - span[0])))
    kept: list[tuple[int, int, str]] = []
    for span in found:
        if not kept or span[0] >= kept[-1][1]:
            kept.append(span)
    return kept


def redact(text: str) -> tuple[str, list[str]]:
    """Replace personal data with placeholders; return the new text and the kinds replaced."""
    if not text:
        return text, []
    spans = _spans(text)
    if not spans:
        return text, []
    pieces, kinds, last = [], [], 0
    for start, end, kind in spans:
        pieces.append(text[last:start])
        pieces.append(PLACEHOLDERS[kind])
        kinds.append(kind)
        last = end
    pieces.append(text[last:])
    return "".join(pieces), kinds


def contains_pii(text: str) -> bool:
    return bool(_spans(text or ""))
