"""The medical term dictionary on Kiwi: every KB surface form, keyed by its content morphemes.

Two things make Korean lay text link reliably:

1. Noun compounds from the KB ("역류성식도염", "고혈압") are registered in Kiwi as NNG, so a glued
   compound with a particle ("역류성식도염이") stays one token. NNG works where NNP does not:
   with NNP, "고혈압약은" still splits as 고/XPN + 혈압; with NNG it becomes 고혈압 + 약.
2. Every surface form is reduced to a *key*: its content morphemes (nouns, predicates, roots,
   foreign words) with particles, endings, adverbs and light verbs dropped. "배가 아파요",
   "배가 아프다" and "배아파요" all become (배/N, 아프/V), so they match the same entry.

Typo correction stays off: it rewrites user-dictionary compounds.

Computing the keys runs Kiwi over every surface form (about 15,000 analyses for the shipped KB), so
a build does it once and an index stores them (``to_dict``); loading (``from_dict``) only registers
the user words and rebuilds the trie.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from kmed import text_ko

if TYPE_CHECKING:
    from kmed.data.kb import KnowledgeBase

# Kiwi tags dropped from keys: particles, endings, punctuation, adverbs, interjections, auxiliaries.
_DROP_PREFIXES = ("J", "E", "SF", "SP", "SS", "SE", "SO", "SW", "MAJ", "IC", "VX", "VCP", "VCN", "NNB", "XSV", "XSA")
_LIGHT_VERBS = {"하", "되", "시키", "당하"}
_NOUNISH = {"NNG", "NNP", "NR", "NP", "XSN", "XPN", "SL", "SN", "SH", "XR"}


# Negators become units of their own (X): a key may contain them ("의식이 없어요", "소변이 안 나와요"),
# and text may carry them between a key's units ("가슴이 안 아파요"), where they negate the mention.
NEGATORS = {("없", "VA"), ("않", "VX"), ("않", "VV"), ("아니", "VCN"), ("안", "MAG"), ("못", "MAG")}
# Auxiliaries that carry meaning stay in keys: "죽고 싶어요" must not shrink to a bare "죽다".
_MEANINGFUL_AUX = {"싶"}


def coarse_tag(tag: str, form: str = "") -> str | None:
    """Map a Kiwi tag to N (noun-like), V (predicate), A (adverb), X (negator) or None (dropped).

    Adverbs stay in keys because mimetic ones carry meaning ("핑 돌아요", "콕콕 쑤셔요"), but the
    linker may skip an adverb or negator in text that a key does not contain ("속이 너무 쓰려요").
    """
    tag = tag.split("-")[0]  # VA-I, VV-R: irregular-conjugation markers
    if (form, tag) in NEGATORS:
        return "X"
    if tag == "VX" and form in _MEANINGFUL_AUX:
        return "V"
    if tag.startswith(_DROP_PREFIXES):
        return None
    if tag == "MAG":
        return "A"
    if tag in ("VV", "VA"):
        return "V"
    if tag in _NOUNISH or tag.startswith("N"):
        return "N"
    if tag == "MM":  # determiners ("한쪽" = 한/MM + 쪽) qualify like adverbs: kept in keys, skippable in text
        return "A"
    return "N"


_MANNER_ENDINGS = {"듯", "듯이", "게", "도록"}


def content_units(tokens) -> list[tuple[str, str, int]]:
    """(normalised form, coarse tag, token index) for each content morpheme.

    A predicate in a manner clause ("쥐어짜듯 아파요", "찢어지게 아파요") acts as an adverb, so the
    linker can skip it between "가슴이" and "아파요".
    """
    units = []
    for index, token in enumerate(tokens):
        coarse = coarse_tag(token.tag, token.form)
        if coarse is None:
            continue
        form = token.form.lower()
        if coarse == "V" and form in _LIGHT_VERBS:
            continue
        if coarse == "V" and index + 1 < len(tokens):
            following = tokens[index + 1]
            if following.tag == "EC" and following.form in _MANNER_ENDINGS:
                coarse = "A"
        units.append((form, coarse, index))
    return units


@dataclass(frozen=True)
class TermEntry:
    entity_id: str
    entity_type: str  # disease | symptom | drug | test | department | topic
    name: str
    surface: str


ENTITY_TYPE = {"cond.": "disease", "sym.": "symptom", "drug.": "drug", "test.": "test", "dept.": "department",
               "topic.": "topic"}

# Final syllables of conjugated forms ("아파요", "쓰리다", "저려"): such forms are not registered as nouns.
_VERBAL_FINALS = set("요다죠네까서고며면해어아워와라져려쳐겨거러나니지게데던는은을든도야")


def _lossy(surface: str, key) -> bool:
    """A key that shrank a longer form to one syllable ("구고" → 구) matches unrelated words; skip it."""
    return len(key) == 1 and len(key[0][0]) == 1 and len(surface.replace(" ", "")) > 1


_kiwi_lock = threading.Lock()
END = "\0end"


def new_kiwi():
    try:
        import kiwipiepy  # noqa: F401
    except ImportError as exc:  # pragma: no cover - a declared dependency
        from kmed.errors import KmedError

        raise KmedError("kiwipiepy가 설치되어 있지 않아요.", "pip install kiwipiepy") from exc
    return text_ko.new_kiwi()


def kiwi_version() -> str:
    """The kiwipiepy and model versions, and the dictionary setting: stored keys are valid only for the
    Kiwi that produced them ("0.24.1/0.24.0", or "0.24.1/0.24.0+no-multi-dict+kb-names+no-default-dict+kb-words")."""
    try:
        import kiwipiepy
        import kiwipiepy_model
    except ImportError:  # pragma: no cover - declared dependencies
        return "unknown"
    return f"{kiwipiepy.__version__}/{getattr(kiwipiepy_model, '__version__', '?')}{text_ko.kiwi_dict_tag()}"


def multiword_names(forms: set[str]) -> list[str]:
    """The spaced forms ("과민성 장 증후군") that Kiwi's multi-word dictionary reads as one name.

    Without that dictionary (it holds 252,000 Wikidata names and costs about 1.1 s of every start-up),
    registering just the KB's own names keeps their analysis as it was. Run once, at build time.
    """
    spaced = sorted(f for f in forms if " " in f.strip())
    if not spaced:
        return []
    kiwi = text_ko.new_kiwi(load_multi_dict=True)
    names = []
    for form in spaced:
        tokens = kiwi.tokenize(form)
        if len(tokens) == 1 and tokens[0].form == form and tokens[0].tag == "NNP":
            names.append(form)
    return names


def default_dict_words(texts: Iterable[str]) -> list[tuple[str, str, float]]:
    """The entries of Kiwi's default dictionary (Wikipedia titles: "스케일링", "이부프로펜") that a Kiwi
    with that dictionary reads in ``texts`` (the KB's), as ``(form, tag, score)``.

    Without the dictionary (about 0.45 s of every start-up), registering just these keeps the KB's own
    text analysed as before; a word found nowhere in the KB can match no passage anyway. Build time only.
    """
    import kiwipiepy_model

    entries: dict[str, tuple[str, float]] = {}
    path = Path(kiwipiepy_model.get_model_path()) / "default.dict"
    for line in path.read_text(encoding="utf-8").splitlines():
        fields = line.split("\t")
        if line.startswith("#") or len(fields) < 2 or "/" in fields[1]:
            continue  # comments, and variant or pre-analysed forms ("기위\t키위/NNG")
        entries[fields[0]] = (fields[1], float(fields[2]) if len(fields) > 2 and fields[2].strip() else 0.0)
    kiwi = text_ko.new_kiwi(load_default_dict=True)
    found: dict[str, tuple[str, float]] = {}
    for tokens in kiwi.tokenize([t for t in texts if t]):
        for token in tokens:
            entry = entries.get(token.form)
            if entry and entry[0] == token.tag:
                found[token.form] = entry
    return sorted((form, tag, score) for form, (tag, score) in found.items())


def _strings(value) -> Iterator[str]:
    """Every string in plain JSON data: the KB's text, from which all its passages are made."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


class TermDictionary:
    """Surface form keys → KB entries, plus the Kiwi instance that produced the keys."""

    def __init__(self, entries: list[TermEntry], user_words: list[str] | None = None, kiwi=None,
                 base_keys: dict[str, list] | None = None, keys: list | None = None,
                 dict_words: list | None = None):
        """``keys``: precomputed ``[[unit, …], [entry index, …]]`` pairs (``to_dict``); computed when None.
        ``dict_words``: ``(form, tag, score)`` entries of Kiwi's default dictionary to register
        (``default_dict_words``), first, so the KB's forms are read as that dictionary would read them."""
        self.entries = entries
        self.kiwi = kiwi or new_kiwi()
        self.dict_words = [tuple(w) for w in dict_words or []]
        for form, tag, score in self.dict_words:
            self.kiwi.add_user_word(form, tag, score)
        if user_words is None:
            # Keys of registered forms as Kiwi read them before registration: "두근거림" becomes one
            # noun, but its verb reading (두근거리) must still match "두근거리다가".
            user_words = self._noun_compounds({e.surface for e in entries})
            base_keys = {w: list(self.key_of(w)) for w in user_words}
            if not text_ko.kiwi_multi_dict():
                user_words += multiword_names({e.surface for e in entries})
        self.user_words = sorted(set(user_words))
        self.base_keys = base_keys or {}
        for word in self.user_words:
            # A spaced word is a multi-word name (see multiword_names); the rest are glued noun compounds.
            self.kiwi.add_user_word(word, "NNP" if " " in word else "NNG", 0.0)
        # Kiwi rebuilds its dictionary on the first analysis after words are added (about 0.6 s on
        # 2 cores without the multi-word dictionary, 1.3 s with it); doing it here keeps that cost in
        # loading, not in the first message.
        self.tokenize("준비")
        if keys is None:
            self.keys = self._compute_keys()
        else:
            self.keys = {tuple((form, tag) for form, tag in units): [entries[i] for i in indexes]
                         for units, indexes in keys}
        # A trie over key units; the entries of a complete key sit under the END marker.
        self.trie: dict = {}
        for key, bucket in self.keys.items():
            node = self.trie
            for unit in key:
                node = node.setdefault(unit, {})
            node[END] = bucket

    def _compute_keys(self) -> dict[tuple[tuple[str, str], ...], list[TermEntry]]:
        keys: dict[tuple[tuple[str, str], ...], list[TermEntry]] = {}
        for entry in self.entries:
            glued = entry.surface.replace(" ", "")
            candidates = [self.key_of(entry.surface), self.key_of(glued)]
            if glued in self.base_keys:
                candidates.append(tuple(tuple(unit) for unit in self.base_keys[glued]))
            for key in dict.fromkeys(candidates):
                if key and not all(tag in ("A", "X") for _, tag in key) and not _lossy(glued, key):
                    bucket = keys.setdefault(key, [])
                    if all(e.entity_id != entry.entity_id for e in bucket):
                        bucket.append(entry)
        return keys

    @classmethod
    def from_kb(cls, kb: KnowledgeBase, kiwi=None) -> TermDictionary:
        """Without Kiwi's default dictionary, the words of it that the KB's text contains are registered
        (``default_dict_words``), so every dictionary made from one KB analyses text alike."""
        entries = []
        for entity in kb.entities():
            kind = next(v for p, v in ENTITY_TYPE.items() if entity.id.startswith(p))
            for form in entity.surface_forms():
                entries.append(TermEntry(entity.id, kind, entity.name, form))
        dict_words = [] if text_ko.kiwi_default_dict() else default_dict_words(_strings(kb.to_snapshot()["sections"]))
        return cls(entries, kiwi=kiwi, dict_words=dict_words)

    def _noun_compounds(self, forms: set[str]) -> list[str]:
        """Forms to register in Kiwi as NNG.

        Glued noun compounds ("역류성식도염"), and spaceless nominal terms that Kiwi would otherwise
        misread into unrelated pieces ("오심" → 오/V, "이명" → 이/MM + 명/NNB, "근종", "한기").
        Conjugated phrases ("저려요") are left to morpheme keys.
        """
        words = []
        for form in forms:
            glued = form.replace(" ", "")
            if len(glued) < 2 or not all("가" <= ch <= "힣" for ch in glued):
                continue
            # Even words Kiwi reads as one token alone are registered: in context it may still split
            # them ("와파린 먹는" → 와/IC + 파리 + ㄴ). Registering a word Kiwi already knows is harmless.
            tokens = self.tokenize(glued)
            all_nouns = all(t.tag.split("-")[0] in _NOUNISH for t in tokens)
            nominal = " " not in form and glued[-1] not in _VERBAL_FINALS
            if all_nouns or nominal:
                words.append(glued)
        return words

    def tokenize(self, text: str):
        with _kiwi_lock:  # Kiwi instances are not documented as thread-safe
            return self.kiwi.tokenize(text)

    def key_of(self, text: str) -> tuple[tuple[str, str], ...]:
        return tuple((form, tag) for form, tag, _ in content_units(self.tokenize(text)))

    def lookup(self, key: tuple[tuple[str, str], ...]) -> list[TermEntry]:
        return self.keys.get(key, [])

    def surface_count(self) -> int:
        return len(self.entries)

    # Plain-data form, keys included, so an index can cache the dictionary and skip re-analysis at load time.
    def to_dict(self) -> dict:
        position = {id(entry): i for i, entry in enumerate(self.entries)}
        return {
            "kiwi": kiwi_version(),
            "user_words": self.user_words,
            "dict_words": [list(w) for w in self.dict_words],
            "base_keys": self.base_keys,
            "entries": [[e.entity_id, e.entity_type, e.name, e.surface] for e in self.entries],
            "keys": [[[list(unit) for unit in key], [position[id(e)] for e in bucket]] for key, bucket in self.keys.items()],
        }

    @classmethod
    def from_dict(cls, data: dict, kiwi=None) -> TermDictionary:
        """The stored dictionary; its keys are reused only when the same Kiwi produced them."""
        entries = [TermEntry(*row) for row in data["entries"]]
        keys = data.get("keys") if data.get("kiwi") == kiwi_version() else None
        return cls(entries, user_words=data["user_words"], kiwi=kiwi, base_keys=data.get("base_keys"), keys=keys,
                   dict_words=data.get("dict_words"))
