"""A query analysed once, and the contract every retriever implements.

    analyser = QueryAnalyser(terms, linker)
    query = Query.analyse("속이 쓰리고 신물이 올라와요", analyser)   # one Kiwi analysis
    query.mentions        # linked entities (속쓰림, 신물 …), negation included
    query.expansions      # canonical names of linked lay forms that the text lacks ("속쓰림")
    query.normalised      # text + expansions: what a sentence-transformers embedder reads
    query.morphemes       # "form/tag" content morphemes of text + expansions: what BM25 and kiwi-static read
    for retriever in (bm25, dense, kg):                            # each a ``Retriever``
        hits = retriever.search(query, k=50)

Kiwi runs over the text once, and its tokens serve both the linker and the morphemes. An expansion
is a term from the dictionary, not part of the query: its morphemes are analysed once per process
(``QueryAnalyser.term_morphemes``) and appended, so no turn analyses its query twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from kmed.kg.linker import EntityLinker, Mention
from kmed.kg.terms import TermDictionary, content_units

if TYPE_CHECKING:
    import numpy as np

    from kmed.retrieval.passages import Hit

MAX_QUERY_CHARS = 1000


def morphemes_of(tokens) -> list[str]:
    """Content morphemes as ``form/coarse-tag`` strings (so 열/N and 열/V differ)."""
    return [f"{form}/{tag}" for form, tag, _ in content_units(tokens)]


class QueryAnalyser:
    """The term dictionary's Kiwi and the entity linker, shared by every query of a retriever."""

    def __init__(self, terms: TermDictionary, linker: EntityLinker):
        self.terms = terms
        self.linker = linker
        self._terms_seen: dict[str, tuple[str, ...]] = {}

    def tokens(self, text: str):
        """The one Kiwi analysis of a query."""
        return self.terms.tokenize(text)

    def term_morphemes(self, term: str) -> tuple[str, ...]:
        """Morphemes of a dictionary term (a canonical name), analysed on its first use only."""
        found = self._terms_seen.get(term)
        if found is None:
            found = self._terms_seen[term] = tuple(morphemes_of(self.terms.tokenize(term)))
        return found


def _expansions(text: str, mentions: Iterable[Mention]) -> tuple[str, ...]:
    """Canonical names of linked, non-negated forms the text does not already contain ("속이 쓰려요" → "속쓰림")."""
    return tuple(dict.fromkeys(m.name for m in mentions if not m.negated and m.name not in text))


@dataclass(frozen=True)
class Query:
    """What every retriever reads about a query; built by ``Query.analyse`` (or ``widen``), never by hand."""

    text: str
    normalised: str
    text_morphemes: tuple[str, ...]
    expansions: tuple[str, ...]
    morphemes: tuple[str, ...]
    mentions: tuple[Mention, ...]
    nouns: tuple[str, ...] = ()  # the text's common and proper nouns (NNG, NNP) as Kiwi read them

    @classmethod
    def analyse(cls, text: str, analyser: QueryAnalyser, mentions: Iterable[Mention] | None = None) -> Query:
        """Strip, cut to ``MAX_QUERY_CHARS``, analyse with Kiwi once, link (unless ``mentions`` are given), expand."""
        text = (text or "").strip()[:MAX_QUERY_CHARS]
        if not text:
            return cls("", "", (), (), (), ())
        tokens = analyser.tokens(text)
        if mentions is None:
            mentions = analyser.linker.link(text, tokens=tokens)
        nouns = tuple(t.form for t in tokens if t.tag in ("NNG", "NNP"))
        return cls._assemble(text, tuple(morphemes_of(tokens)), tuple(mentions), analyser, nouns)

    @classmethod
    def _assemble(cls, text: str, text_morphemes: tuple[str, ...], mentions: tuple[Mention, ...],
                  analyser: QueryAnalyser, nouns: tuple[str, ...] = ()) -> Query:
        expansions = _expansions(text, mentions)
        morphemes = text_morphemes + tuple(m for term in expansions for m in analyser.term_morphemes(term))
        return cls(text, " ".join([text, *expansions]), text_morphemes, expansions, morphemes, mentions, nouns)

    def widen(self, terms: Iterable[str], mentions: Iterable[Mention], analyser: QueryAnalyser) -> Query:
        """This query with dictionary ``terms`` appended to its text and ``mentions`` added, without Kiwi
        over the text again: a symptom report searches with the session's earlier symptoms too."""
        terms = [t for t in terms if t]
        if not self.text:
            return self
        text = " ".join([self.text, *terms])
        text_morphemes = self.text_morphemes + tuple(m for term in terms for m in analyser.term_morphemes(term))
        return self._assemble(text, text_morphemes, (*self.mentions, *mentions), analyser, self.nouns)

    def __bool__(self) -> bool:
        return bool(self.text)


@runtime_checkable
class Retriever(Protocol):
    """One way of finding passages for a ``Query``: BM25, dense and the KG each implement it.

    ``within``: a boolean mask over the index's passages that may be returned (None: all of them).
    A retriever whose passages are not the index's (the KG renders its own) ignores it, and the
    hybrid retriever filters what it returns. Hits come best first; ``score`` is the retriever's own.
    """

    name: str

    def search(self, query: Query, k: int, within: np.ndarray | None = None) -> list[Hit]: ...
