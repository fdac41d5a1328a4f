"""PII scrubbing: 주민등록번호 (with checksum), phone numbers, e-mail addresses."""

from __future__ import annotations

import pytest

from kmed.data.pii import PLACEHOLDERS, contains_pii, redact, rrn_checksum_ok

_WEIGHTS = (2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5)


def _rrn(first12: str) -> str:
    check = (11 - sum(int(d) * w for d, w in zip(first12, _WEIGHTS, strict=True)) % 11) % 10
    return first12 + str(check)


VALID = _rrn("900101123456")  # 9001011234568
INVALID = VALID[:-1] + str((int(VALID[-1]) + 1) % 10)


def test_checksum_accepts_valid_and_rejects_a_changed_digit():
    assert VALID == "9001011234568"
    assert rrn_checksum_ok(VALID)
    assert not rrn_checksum_ok(INVALID)
    assert not rrn_checksum_ok("123")


def test_unhyphenated_rrn_needs_the_checksum():
    assert redact(f"주민번호 {VALID} 입니다") == ("주민번호 [주민등록번호] 입니다", ["rrn"])
    assert redact(f"주문번호 {INVALID}") == (f"주문번호 {INVALID}", [])


def test_hyphenated_rrn_with_a_valid_birth_date_is_redacted_even_without_checksum():
    # Numbers issued since October 2020 carry no checksum; the hyphenated form is explicit enough.
    assert redact(f"번호 {VALID[:6]}-{VALID[6:]}")[1] == ["rrn"]
    assert redact(f"번호 {INVALID[:6]}-{INVALID[6:]}")[1] == ["rrn"]
    assert redact("번호 901301-1234567")[1] == []  # month 13: not a birth date
    assert redact("번호 900101-9234567")[1] == []  # gender digit 9 does not exist


@pytest.mark.parametrize(
    "text",
    ["010-1234-5678", "01012345678", "010 1234 5678", "010.1234.5678", "+82 10-1234-5678", "02-123-4567", "(02) 1234-5678", "031-123-4567", "070-1234-5678"],
)
def test_phone_numbers(text):
    redacted, kinds = redact(f"연락처: {text} 로 주세요")
    assert kinds == ["phone"], redacted
    assert redacted == f"연락처: {PLACEHOLDERS['phone']} 로 주세요"


@pytest.mark.parametrize(
    "text",
    ["응급 시 119에 전화하세요", "1339 상담", "1588-1234 대표번호", "혈압 120/80", "2023-10-15 측정", "체온 37.5도, 맥박 80회", "IP 192.168.0.1", "HbA1c 6.5%"],
)
def test_medical_numbers_and_public_hotlines_survive(text):
    assert redact(text) == (text, [])
    assert not contains_pii(text)


def test_emails_and_several_kinds_in_text_order():
    text = f"메일 hong.gil-dong+1@example.co.kr, 전화 010-1234-5678, 번호 {VALID}"
    redacted, kinds = redact(text)
    assert kinds == ["email", "phone", "rrn"]
    assert redacted == "메일 [이메일], 전화 [전화번호], 번호 [주민등록번호]"


def test_empty_text():
    assert redact("") == ("", [])
