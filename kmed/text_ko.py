"""Small Korean text helpers: particles that agree with the word before them."""

from __future__ import annotations

_PAIRS = {"은": ("은", "는"), "는": ("은", "는"), "이": ("이", "가"), "가": ("이", "가"), "을": ("을", "를"),
          "를": ("을", "를"), "과": ("과", "와"), "와": ("과", "와"), "으로": ("으로", "로"), "로": ("으로", "로"),
          "이에요": ("이에요", "예요"), "예요": ("이에요", "예요")}


def has_final_consonant(word: str) -> bool | None:
    """True if the last Hangul syllable has a 받침; None when the word does not end in Hangul."""
    word = word.rstrip(" )]")
    if not word or not ("가" <= word[-1] <= "힣"):
        return None
    return (ord(word[-1]) - 0xAC00) % 28 != 0


def josa(word: str, particle: str) -> str:
    """``josa("위염", "는") == "위염은"``; ``josa("감기", "이") == "감기가"``."""
    with_final, without_final = _PAIRS[particle]
    final = has_final_consonant(word)
    if particle in ("으로", "로") and word and "가" <= word[-1] <= "힣" and (ord(word[-1]) - 0xAC00) % 28 == 8:
        return word + "로"  # ㄹ 받침 takes 로
    if final is None:
        return f"{word}{with_final}({without_final})" if particle not in ("이에요", "예요") else word + "이에요"
    return word + (with_final if final else without_final)
