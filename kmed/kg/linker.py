"""Entity linking on morphemes: longest match of term-dictionary keys, with negation.

    linker = EntityLinker.from_kb(load_kb_or_fail())
    linker.link("역류성식도염이 있는데 가슴 통증은 없어요")
    # [Mention(cond.gerd, …, negated=False), Mention(sym.chest_pain, …, negated=True)]

Negation is clause-local: a mention is negated when 없다/않다/아니다/괜찮다 or the adverbs 안/못
follow it before any other content word, or sit inside its span ("가슴이 안 아파요"). Mentions joined
by a coordinating particle share the negation of the last one ("두통이나 열은 없어요").
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from kmed.data.kb import KnowledgeBase
from kmed.kg.terms import END, NEGATORS, TermDictionary, content_units

_NEGATORS = NEGATORS | {("괜찮", "VA")}
# Words that may sit between a mention and its negator without breaking the clause:
# particles, adverbs, light verbs ("자해는 하지 않아요"), adnominal endings and 적/일 ("기절한 적은 없어요").
_FILLER_TAGS = ("J", "MAG", "XSA", "XSV", "VCP", "ETM")
_FILLER_ENDINGS = {"지", "게", "어", "아", "어도", "아도", "ㄴ", "은", "는"}
_FILLER_WORDS = {("적", "NNB"), ("일", "NNB"), ("것", "NNB"), ("거", "NNB"), ("하", "VV"), ("되", "VV")}
# Endings that join alternatives ("토하거나 숨찬 건 없어요"): the negation at the end covers both.
_DISJUNCTIVE = {"거나", "이나", "나", "든지", "든가"}


@dataclass(frozen=True)
class Mention:
    id: str
    name: str
    type: str
    start: int
    end: int
    surface: str
    negated: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


def _is_negator(token) -> bool:
    return (token.form, token.tag.split("-")[0]) in _NEGATORS


class EntityLinker:
    def __init__(self, terms: TermDictionary):
        self.terms = terms

    @classmethod
    def from_kb(cls, kb: KnowledgeBase) -> EntityLinker:
        return cls(TermDictionary.from_kb(kb))

    def link(self, text: str, include_negated: bool = True, tokens=None) -> list[Mention]:
        """Mentions in ``text``; ``tokens``: its Kiwi analysis, when the caller already has it."""
        if not text or not text.strip():
            return []
        tokens = self.terms.tokenize(text) if tokens is None else tokens
        units = content_units(tokens)
        mentions: list[tuple[Mention, int, int]] = []  # with first and last token index
        i, topics_done = 0, -1
        while i < len(units):
            match = self._longest_match(units, i, skip_topics=topics_done == i)
            if match is None:
                i += 1
                continue
            stop, entries, in_key = match
            first, last = units[i][2], units[stop - 1][2]
            start, end = tokens[first].start, tokens[last].start + tokens[last].len
            negated = self._negated(tokens, first, last, in_key)
            for entry in entries:
                mention = Mention(entry.entity_id, entry.name, entry.entity_type, start, end, text[start:end], negated)
                mentions.append((mention, first, last))
            # A topic phrase ("감기에 항생제") must not hide the entities inside it (감기, 항생제): after a
            # topic-only match, the same position is scanned again for the other entry types.
            if all(entry.entity_type == "topic" for entry in entries):
                topics_done = i
            else:
                i = stop
        resolved = self._share_coordinated_negation(tokens, mentions)
        return [m for m in resolved if include_negated or not m.negated]

    def _longest_match(self, units, start: int, skip_topics: bool = False):
        """Walk the trie from ``units[start]``; adverbs in the text may be skipped inside a match."""
        if (units[start][0], units[start][1]) not in self.terms.trie:
            return None
        best = None
        # (next unit, trie node, last step was a real match, token indexes the key itself matched)
        frontier = [(start, self.terms.trie, False, ())]
        while frontier:
            pos, node, matched, path = frontier.pop()
            # Longest span first; at the same end, the key that matched more words itself wins
            # ("배가 꼬이듯 아파요" → the colicky-pain entry, not plain 복통 with 꼬이듯 skipped).
            entries = node.get(END) if matched else None
            if entries and skip_topics:
                entries = [e for e in entries if e.entity_type != "topic"]
            if entries and (best is None or (pos, len(path)) > (best[0], len(best[2]))):
                best = (pos, entries, frozenset(path))
            if pos >= len(units):
                continue
            form, tag, token_index = units[pos]
            child = node.get((form, tag))
            if child is not None:
                frontier.append((pos + 1, child, True, (*path, token_index)))
            if tag in ("A", "X") and pos > start:
                frontier.append((pos + 1, node, False, path))
        return best

    @staticmethod
    def _negated(tokens, first: int, last: int, in_key: frozenset = frozenset()) -> bool:
        """Negated by a negator inside the span that the key did not contain, or one right after it."""
        if any(_is_negator(t) for i, t in enumerate(tokens[first : last + 1], start=first) if i not in in_key):
            return True
        for token in tokens[last + 1 :]:
            if _is_negator(token):
                return True
            tag = token.tag.split("-")[0]
            if tag.startswith(_FILLER_TAGS) or (token.form, tag) in _FILLER_WORDS:
                continue
            if tag == "EC" and token.form in _FILLER_ENDINGS:
                continue
            return False  # another content word, a clause boundary or the sentence end
        return False

    @staticmethod
    def _share_coordinated_negation(tokens, mentions: list[tuple[Mention, int, int]]) -> list[Mention]:
        result = [m for m, _, _ in mentions]
        for index in range(len(mentions) - 2, -1, -1):
            _, _, last = mentions[index]
            _, next_first, _ = mentions[index + 1]
            between = tokens[last + 1 : next_first]
            coordinated = between and all(
                t.tag.startswith("JC") or t.tag == "SP" or t.form in ("도", "나") or (t.tag == "EC" and t.form in _DISJUNCTIVE)
                for t in between
            )
            if coordinated and result[index + 1].negated and not result[index].negated:
                m = result[index]
                result[index] = Mention(m.id, m.name, m.type, m.start, m.end, m.surface, True)
        return result

    def entity_ids(self, text: str) -> list[str]:
        """Non-negated entity ids in order of first mention."""
        return list(dict.fromkeys(m.id for m in self.link(text) if not m.negated))


if __name__ == "__main__":  # python -m kmed.kg.linker "문장"
    import sys

    from kmed.data.kb import load_kb_or_fail

    linker = EntityLinker.from_kb(load_kb_or_fail())
    for mention in linker.link(" ".join(sys.argv[1:])):
        print(mention)
