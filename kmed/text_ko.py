"""Korean text helpers shared by every floor: the one sentence splitter, particles, overlap, citations.

    from kmed.text_ko import split_sentences, is_whole_sentence, overlap, josa
    split_sentences("감기는 바이러스 질환이라 항생제가 필요 없어요. 푹 쉬어요.")
    # ["감기는 바이러스 질환이라 항생제가 필요 없어요.", "푹 쉬어요."]

Sentence boundaries come from Kiwi's ``split_into_sents`` (a morphological analysis, not a
punctuation regex), so "…필요 없어요" is never cut after "필요". The split is lossless: the pieces
joined by single spaces give back the whitespace-normalised text (``tests/ground/test_text_ko.py`` checks
this on every KB text). Chunking, the composer, the output guard, prompts and the AI Hub loaders all
call this module; nothing else in kmed splits sentences.
"""

from __future__ import annotations

import os
import re
import threading
from functools import lru_cache

_PAIRS = {"은": ("은", "는"), "는": ("은", "는"), "이": ("이", "가"), "가": ("이", "가"), "을": ("을", "를"),
          "를": ("을", "를"), "과": ("과", "와"), "와": ("과", "와"), "으로": ("으로", "로"), "로": ("으로", "로"),
          "이에요": ("이에요", "예요"), "예요": ("이에요", "예요")}

# A citation marker as the generators write it: "[2]" or "[1, 3]".
CITATION = re.compile(r"\s*\[(\d+(?:\s*,\s*\d+)*)\]")
_WORD = re.compile(r"[가-힣A-Za-z0-9]{2,}")
_HANGUL_WORD = re.compile(r"[가-힣]+")
# Endings a whole sentence may close with, besides a Kiwi final ending (EF): a noun-phrase line
# ("… 금지.") or a bracketed aside are whole when they end in sentence punctuation.
_FINAL_PUNCT = ".!?…"
_CLOSERS = ")]\"'”’」』 "

_lock = threading.Lock()
_kiwi = None

# Kiwi's built-in multi-word dictionary (about 252,000 Wikidata names, e.g. "과민성 장 증후군" as one
# token): more than half of Kiwi's start-up. Off by default: the term dictionary registers the KB's own
# multi-word names instead (kmed.kg.terms.multiword_names), which kept grounded results identical and
# hybrid retrieval within noise (docs/benchmarks.md). KMED_KIWI_MULTI_DICT=0|1 overrides the default;
# the index manifest records the setting (``kiwi_dict_tag``), so an index built under the other is stale.
KIWI_MULTI_DICT = False
# Kiwi's default extra dictionary (about 113,000 Wikipedia titles as NNP): about 0.45 s of every start-up.
# Off by default: the KB's own terms are registered as user words anyway, and the A/B kept hybrid
# retrieval within noise over 4 embedder seeds and grounded outcomes within noise (docs/benchmarks.md).
# KMED_KIWI_DEFAULT_DICT=0|1 overrides it; the analyzer tag records it, so an index built under the other is stale.
KIWI_DEFAULT_DICT = False
_FALSE = {"0", "false", "no", "off"}
_TRUE = {"1", "true", "yes", "on"}


def _kiwi_setting(variable: str, default: bool) -> bool:
    """An on/off environment setting for Kiwi's dictionaries; a value that is neither is a ConfigError."""
    value = os.environ.get(variable, "").strip().lower()
    if not value:
        return default
    if value in _FALSE | _TRUE:
        return value in _TRUE
    from kmed.errors import ConfigError

    raise ConfigError(f"{variable}={value!r} 를 알 수 없어요.", f"{variable}=0 또는 1")


def kiwi_multi_dict() -> bool:
    """Whether kmed's Kiwi loads the multi-word dictionary: ``KMED_KIWI_MULTI_DICT`` or ``KIWI_MULTI_DICT``."""
    return _kiwi_setting("KMED_KIWI_MULTI_DICT", KIWI_MULTI_DICT)


def kiwi_default_dict() -> bool:
    """Whether kmed's Kiwi loads the default extra dictionary: ``KMED_KIWI_DEFAULT_DICT`` or ``KIWI_DEFAULT_DICT``."""
    return _kiwi_setting("KMED_KIWI_DEFAULT_DICT", KIWI_DEFAULT_DICT)


def kiwi_dict_tag() -> str:
    """What the dictionary settings add to the Kiwi version an index records ("" with both dictionaries)."""
    tag = "" if kiwi_multi_dict() else "+no-multi-dict+kb-names"
    return tag + ("" if kiwi_default_dict() else "+no-default-dict+kb-words")


def new_kiwi(**options):
    """The one place kmed builds a Kiwi: the splitter, the term dictionary and the eval-set builder use it."""
    from kiwipiepy import Kiwi

    options.setdefault("load_multi_dict", kiwi_multi_dict())
    options.setdefault("load_default_dict", kiwi_default_dict())
    return Kiwi(**options)


def _splitter():
    """One plain Kiwi (no user dictionary, so splitting never depends on the KB), made on first use."""
    global _kiwi
    with _lock:
        if _kiwi is None:
            _kiwi = new_kiwi(num_workers=-1)
        return _kiwi


def warm_splitter() -> None:
    """Build the splitter's Kiwi now (about 1 s): for a caller whose every turn will need it, such as
    the output guard checking a model's sentences, so the cost lands in loading, not in a first answer."""
    _splitter().tokenize("준비")


def normalize_space(text: str) -> str:
    return " ".join((text or "").split())


# Without punctuation, a final ending (EF) closes a sentence only in these syllables. Kiwi also reads
# the connective -어/-아 as the 반말 final ending ("화상을 일으킬 수 있어 하지 않아요", "증상이 가벼워
# 모르고 지나가요"), and cutting there quotes half a sentence; 요, 다, 까 and 죠 are not connectives.
_UNPUNCTUATED_FINALS = "요다까죠"


def _closes(piece: str, last_tag: str | None) -> bool:
    """A piece closes a sentence when it ends in sentence punctuation, or on a final ending (EF) in
    one of ``_UNPUNCTUATED_FINALS``."""
    core = piece.rstrip(_CLOSERS)
    return bool(core) and (core[-1] in _FINAL_PUNCT or (last_tag == "EF" and core[-1] in _UNPUNCTUATED_FINALS))


@lru_cache(maxsize=50_000)
def _split_line(line: str) -> tuple[str, ...]:
    """Kiwi's sentences, kept only at boundaries that are a space after a closed sentence.

    Kiwi sometimes ends a "sentence" inside a parenthesis ("확인해요(" + "검사 … 쉬어요).") or after a
    list mark ("다뇨·"); such a cut is merged back, so every piece is a slice of ``line`` between
    spaces and the pieces joined by one space give the line back.
    """
    pieces: list[str] = []
    start = 0  # where the piece being built starts in ``line``
    for sentence in _splitter().split_into_sents(line, return_tokens=True):
        end = sentence.end
        tokens = sentence.tokens or []
        last_tag = tokens[-1].tag if tokens else None
        if last_tag == "SF" and len(tokens) > 1:
            last_tag = tokens[-2].tag
        if end >= len(line) or not line[end].isspace():
            continue  # not at a space: the next Kiwi sentence continues this piece
        piece = line[start:end].strip()
        if piece and _closes(piece, last_tag):
            pieces.append(piece)
            start = end + 1
    tail = line[start:].strip()
    if tail:
        pieces.append(tail)
    return tuple(pieces)


def split_sentences(text: str, keep_lines: bool = False) -> list[str]:
    """Whole sentences of ``text``. ``keep_lines``: a line break is also a boundary (AI Hub text)."""
    if not text or not text.strip():
        return []
    lines = text.split("\n") if keep_lines else [text]
    out: list[str] = []
    for line in lines:
        line = normalize_space(line)
        if line:
            out.extend(_split_line(line))
    return out


def join_sentences(sentences: list[str]) -> str:
    return " ".join(s.strip() for s in sentences if s.strip())


def is_whole_sentence(sentence: str) -> bool:
    """True when ``sentence`` closes as a sentence does: a final ending (EF) or sentence punctuation.

    "항생제가 필요 없어요." is whole; "감기는 바이러스 질환이라 항생제가 필요" is not (it ends on a noun
    with no punctuation).
    """
    sentence = CITATION.sub("", sentence or "").strip()
    if not sentence:
        return False
    if sentence.rstrip(_CLOSERS)[-1:] in tuple(_FINAL_PUNCT):
        return True
    tokens = _splitter().tokenize(sentence)
    return bool(tokens) and tokens[-1].tag in ("EF", "SF")


# Morphemes that turn a Korean clause negative or prohibitive: 없다, 않다, 말다 ("하지 마세요"),
# 아니다, the adverbs 안/못, and the nouns 금지/금물.
_NEGATORS = {("없", "VA"), ("않", "VX"), ("말", "VX"), ("아니", "VCN"), ("안", "MAG"), ("못", "MAG"),
             ("못하", "VX"), ("금지", "NNG"), ("금물", "NNG")}


def is_negated(sentence: str) -> bool:
    """True when the sentence carries a negation or prohibition ("필요 없어요", "먹으면 안 돼요", "하지 마세요").

    Used to check that a paraphrase keeps its source's polarity: "항생제가 필요해요" overlaps
    "항생제가 필요 없어요" in almost every character, and says the opposite.
    """
    sentence = CITATION.sub("", sentence or "").strip()
    return bool(sentence) and any((t.form, t.tag) in _NEGATORS for t in _splitter().tokenize(sentence))


def ends_with_final_ending(sentence: str) -> bool:
    """True when the last morpheme before any closing punctuation is a sentence-final ending (EF).

    Stricter than ``is_whole_sentence``: "항생제가 필요." has a period but no final ending, so a
    model cannot pass off a cut clause by adding punctuation.
    """
    sentence = CITATION.sub("", sentence or "").strip()
    tokens = [t for t in _splitter().tokenize(sentence) if t.tag not in ("SF", "SE", "SS", "SW", "SP")] if sentence else []
    return bool(tokens) and tokens[-1].tag == "EF"


# Words that point back at the sentence before ("이런 열에는", "그래서", "이 경우"): quoted alone, such
# a sentence can say something its passage never meant. Connectives and "이/그 + noun" count at the
# start; the determiners 이런/그런/이때… anywhere, as whole words.
_LEANS_BACK_START = re.compile(r"^(그래서|따라서|그러나|하지만|그런데|그러므로|또한|이것|그것|이는|이\s|그\s)")
_LEANS_BACK_ANY = re.compile(r"(?:^|\s)(이런|이러한|그런|그러한|이때|그때|이렇게|그렇게|이\s*경우|그\s*경우)(?=\s|,)")


def leans_on_previous(sentence: str) -> bool:
    """True when the sentence points at what came before it ("해열제는 이런 열에는 효과가 없어요",
    "그래서 물을 마셔요"), so it cannot be quoted on its own."""
    text = (sentence or "").lstrip("-•* ").strip()
    return bool(_LEANS_BACK_START.match(text) or _LEANS_BACK_ANY.search(text))


def pack_sentence_groups(sentences: list[str], max_chars: int) -> list[list[str]]:
    """Greedy packing of whole sentences into groups of at most ``max_chars`` (a longer sentence stays whole)."""
    groups: list[list[str]] = []
    size = 0
    for sentence in (s.strip() for s in sentences):
        if not sentence:
            continue
        if groups and size + 1 + len(sentence) <= max_chars:
            groups[-1].append(sentence)
            size += 1 + len(sentence)
        else:
            groups.append([sentence])
            size = len(sentence)
    return groups


def pack_sentences(sentences: list[str], max_chars: int) -> list[str]:
    return [join_sentences(group) for group in pack_sentence_groups(sentences, max_chars)]


def sentence_ends(sentences: list[str]) -> list[int]:
    """End offsets of ``sentences`` in ``join_sentences(sentences)``: stored with a passage so a turn
    reads its sentences without running the splitter again."""
    ends, position = [], 0
    for sentence in sentences:
        position += len(sentence)
        ends.append(position)
        position += 1
    return ends


def passage_sentences(text: str, ends: list[int] | None = None) -> list[str]:
    """The sentences of a passage: from its stored ``sentence_ends`` when they fit, else split now."""
    if ends and ends[-1] == len(text):
        starts = [0, *(end + 1 for end in ends[:-1])]
        return [text[a:b] for a, b in zip(starts, ends, strict=True)]
    return split_sentences(text)


def bigrams(text: str) -> set[str]:
    """Character bigrams of words: cheap, tokenizer-free overlap that tolerates particles."""
    grams = set()
    for word in _WORD.findall(text or ""):
        grams.update(word[i : i + 2] for i in range(len(word) - 1))
    return grams


def word_initials(text: str) -> set[str]:
    """The first syllable of every Hangul word ("술과 함께하면" → {술, 함}): where a one-syllable noun
    with its particle ("술과", "눈이") is found, without matching it inside other words (수술)."""
    return {word[0] for word in _HANGUL_WORD.findall(text or "")}


def overlap(a: str, b: str) -> float:
    """Share of ``a``'s bigrams found in ``b``."""
    ga, gb = bigrams(a), bigrams(b)
    return len(ga & gb) / max(1, len(ga))


def citation_numbers(text: str) -> list[int]:
    return [int(n) for group in CITATION.findall(text or "") for n in re.split(r"\s*,\s*", group)]


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
