"""Text cleaning and splitting shared by every AI Hub loader: whitespace, markup, sentences, chunks.

Cleaning is conservative: only known HTML tags are removed, so LaTeX such as ``$x<y$`` in the math
data survives; whitespace is normalised but line breaks between options and paragraphs are kept.
"""

from __future__ import annotations

import html
import re
import unicodedata
from functools import lru_cache

from kmed.text_ko import pack_sentences, split_sentences

_ZERO_WIDTH = re.compile("[\u200b\u200c\u200d\u2060\ufeff\u00ad]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_BREAK_TAGS = re.compile(r"<\s*(br|/p|/div|/li|/tr|/h[1-6]|hr)\s*/?\s*>", re.IGNORECASE)
_HTML_TAGS = re.compile(
    r"</?\s*(p|div|span|b|i|u|s|em|strong|sup|sub|font|table|thead|tbody|tr|td|th|li|ul|ol|img|a|h[1-6]|center|small|big|mark)"
    r"(\s[^<>]{0,300})?\s*/?\s*>",
    re.IGNORECASE,
)
_SPACES = re.compile(r"[ \t\u00a0\u3000\u2002-\u200a]+")
_BLANK_LINES = re.compile(r"\n{3,}")
_WORD = re.compile(r"[0-9A-Za-z가-힣]+")

# Particles and endings stripped from the end of a Korean word when picking key terms.
_PARTICLES = sorted(
    "은 는 이 가 을 를 의 에 에서 에게 께 으로 로 와 과 도 만 까지 부터 이나 나 이며 며 하고 보다 처럼 "
    "이다 입니다 이에요 예요 이고 고 하는 한 된 되는 하며 해야 합니다 한다 된다 있다 있습니다 "
    "에는 에도 으로는 로는 과의 와의 에서는".split(),
    key=len,
    reverse=True,
)
_STOPWORDS = set(
    "그 이 저 것 수 등 및 또는 또한 그리고 하지만 때문 경우 통해 위해 대한 대해 가장 다음 중 있는 없는 "
    "있다 없다 한다 된다 하는 되는 the a an of and or to in on for with is are be by as at".split()
)


def clean_text(text: str | None) -> str:
    """NFC, no zero-width or control characters, known HTML markup removed, whitespace tidied."""
    if not text:
        return ""
    text = unicodedata.normalize("NFC", str(text))
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _ZERO_WIDTH.sub("", text)
    text = _CONTROL.sub(" ", text)
    if "<" in text:
        text = _BREAK_TAGS.sub("\n", text)
        text = _HTML_TAGS.sub("", text)
    if "&" in text:
        text = html.unescape(text)
    text = _SPACES.sub(" ", text)
    text = "\n".join(line.strip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", text).strip()


def sentences(text: str) -> list[str]:
    """Whole sentences (the one splitter, ``kmed.text_ko``); a line break is always a boundary."""
    return split_sentences(text, keep_lines=True)


def chunk(text: str, max_chars: int) -> list[str]:
    """Sentence-aligned pieces of at most ``max_chars`` (a longer sentence is cut at a space).

    Packing is the KB chunker's (``pack_sentences``), so KB and AI Hub passages are cut alike.
    """
    parts: list[str] = []
    for sentence in sentences(text):
        while len(sentence) > max_chars:
            cut = sentence.rfind(" ", 0, max_chars)
            cut = cut if cut > max_chars // 2 else max_chars
            parts.append(sentence[:cut].strip())
            sentence = sentence[cut:].strip()
        parts.append(sentence)
    return [p for p in pack_sentences([p for p in parts if p], max_chars) if p]


def norm_key(text: str) -> str:
    """Exact-duplicate key: case, spacing and punctuation do not count."""
    return "".join(_WORD.findall(unicodedata.normalize("NFC", text).casefold()))


def shingles(text: str, size: int) -> set[str]:
    key = norm_key(text)
    if len(key) <= size:
        return {key} if key else set()
    return {key[i : i + size] for i in range(len(key) - size + 1)}


_PARTICLE_SET = set(_PARTICLES)
_PARTICLE_LENGTHS = sorted({len(p) for p in _PARTICLES}, reverse=True)


@lru_cache(maxsize=262144)
def strip_particle(word: str) -> str:
    """The longest known particle or ending is removed when at least two characters remain."""
    for size in _PARTICLE_LENGTHS:
        if len(word) - size >= 2 and word[-size:] in _PARTICLE_SET:
            return word[:-size]
    return word


def content_terms(text: str) -> list[str]:
    """Content words in order of first appearance, particles stripped, stopwords and 1-char words dropped."""
    seen: dict[str, None] = {}
    for word in _WORD.findall(unicodedata.normalize("NFC", text).casefold()):
        term = strip_particle(word)
        if len(term) >= 2 and term not in _STOPWORDS and not term.isdigit():
            seen.setdefault(term, None)
    return list(seen)


def hangul_ratio(text: str) -> float:
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return 0.0
    return sum("가" <= c <= "힣" for c in letters) / len(letters)


def guess_lang(text: str) -> str:
    return "ko" if hangul_ratio(text) >= 0.2 else "en"
