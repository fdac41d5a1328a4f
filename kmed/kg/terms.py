"""The medical term dictionary on Kiwi: every KB surface form, keyed by its content morphemes.

Two things make Korean lay text link reliably:

1. Noun compounds from the KB ("역류성식도염", "고혈압") are registered in Kiwi as NNG, so a glued
   compound with a particle ("역류성식도염이") stays one token. NNG works where NNP does not:
   with NNP, "고혈압약은" still splits as 고/XPN + 혈압; with NNG it becomes 고혈압 + 약.
2. Every surface form is reduced to a *key*: its content morphemes (nouns, predicates, roots,
   foreign words) with particles, endings, adverbs and light verbs dropped. "배가 아파요",
   "배가 아프다" and "배아파요" all become (배/N, 아프/V), so they match the same entry.

Typo correction stays off: it rewrites user-dictionary compounds.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from kmed.data.kb import KnowledgeBase

# Kiwi tags dropped from keys: particles, endings, punctuation, adverbs, interjections, auxiliaries.
_DROP_PREFIXES = ("J", "E", "SF", "SP", "SS", "SE", "SO", "SW", "MAJ", "IC", "VX", "VCP", "VCN", "NNB", "XSV", "XSA")
_LIGHT_VERBS = {"하", "되", "시키", "당하"}
_NOUNISH = {"NNG", "NNP", "NR", "NP", "XSN", "XPN", "SL", "SN", "SH", "XR"}


def coarse_tag(tag: str) -> str | None:
    """Map a Kiwi tag to N (noun-like), V (predicate), A (adverb) or None (dropped from keys).

    Adverbs stay in keys because mimetic ones carry meaning ("핑 돌아요", "콕콕 쑤셔요"), but the
    linker may skip an adverb in text that a key does not contain ("속이 너무 쓰려요").
    """
    tag = tag.split("-")[0]  # VA-I, VV-R: irregular-conjugation markers
    if tag.startswith(_DROP_PREFIXES):
        return None
    if tag == "MAG":
        return "A"
    if tag in ("VV", "VA"):
        return "V"
    if tag in _NOUNISH or tag.startswith("N"):
        return "N"
    if tag == "MM":
        return None
    return "N"


_MANNER_ENDINGS = {"듯", "듯이", "게", "도록"}


def content_units(tokens) -> list[tuple[str, str, int]]:
    """(normalised form, coarse tag, token index) for each content morpheme.

    A predicate in a manner clause ("쥐어짜듯 아파요", "찢어지게 아파요") acts as an adverb, so the
    linker can skip it between "가슴이" and "아파요".
    """
    units = []
    for index, token in enumerate(tokens):
        coarse = coarse_tag(token.tag)
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
    entity_type: str  # disease | symptom | drug | test | department
    name: str
    surface: str


ENTITY_TYPE = {"cond.": "disease", "sym.": "symptom", "drug.": "drug", "test.": "test", "dept.": "department"}

_kiwi_lock = threading.Lock()
END = "\0end"


def new_kiwi():
    try:
        from kiwipiepy import Kiwi
    except ImportError as exc:  # pragma: no cover - a declared dependency
        from kmed.errors import KmedError

        raise KmedError("kiwipiepy가 설치되어 있지 않아요.", "pip install kiwipiepy") from exc
    return Kiwi()


class TermDictionary:
    """Surface form keys → KB entries, plus the Kiwi instance that produced the keys."""

    def __init__(self, entries: list[TermEntry], user_words: list[str] | None = None, kiwi=None):
        self.entries = entries
        self.kiwi = kiwi or new_kiwi()
        if user_words is None:
            user_words = self._noun_compounds({e.surface for e in entries})
        self.user_words = sorted(set(user_words))
        for word in self.user_words:
            self.kiwi.add_user_word(word, "NNG", 0.0)
        self.keys: dict[tuple[tuple[str, str], ...], list[TermEntry]] = {}
        for entry in entries:
            for variant in {entry.surface, entry.surface.replace(" ", "")}:
                key = self.key_of(variant)
                if key and not all(tag == "A" for _, tag in key):
                    bucket = self.keys.setdefault(key, [])
                    if all(e.entity_id != entry.entity_id for e in bucket):
                        bucket.append(entry)
        # A trie over key units; the entries of a complete key sit under the END marker.
        self.trie: dict = {}
        for key, bucket in self.keys.items():
            node = self.trie
            for unit in key:
                node = node.setdefault(unit, {})
            node[END] = bucket

    @classmethod
    def from_kb(cls, kb: KnowledgeBase, kiwi=None) -> TermDictionary:
        entries = []
        for entity in kb.entities():
            kind = next(v for p, v in ENTITY_TYPE.items() if entity.id.startswith(p))
            for form in entity.surface_forms():
                entries.append(TermEntry(entity.id, kind, entity.name, form))
        return cls(entries, kiwi=kiwi)

    def _noun_compounds(self, forms: set[str]) -> list[str]:
        """Glued forms whose un-registered analysis is all noun-like: the ones to register in Kiwi."""
        words = []
        for form in forms:
            glued = form.replace(" ", "")
            if len(glued) < 2 or not any("가" <= ch <= "힣" for ch in glued):
                continue
            tokens = self.tokenize(glued)
            if len(tokens) > 1 and all(t.tag.split("-")[0] in _NOUNISH for t in tokens):
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

    # Plain-data form so an index can cache the dictionary and skip re-analysis at load time.
    def to_dict(self) -> dict:
        return {
            "user_words": self.user_words,
            "entries": [[e.entity_id, e.entity_type, e.name, e.surface] for e in self.entries],
        }

    @classmethod
    def from_dict(cls, data: dict, kiwi=None) -> TermDictionary:
        entries = [TermEntry(*row) for row in data["entries"]]
        return cls(entries, user_words=data["user_words"], kiwi=kiwi)
