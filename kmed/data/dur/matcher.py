"""DUR ingredient names onto KB drugs: name normalisation and the ``DrugMatcher``.

Names are compared after normalisation (case, spaces, punctuation, and trailing salt or hydrate words
such as 염산염 / hydrochloride). A name that could mean more than one KB drug, and a combination
product whose components the KB does not hold as one drug, stay unmatched: a wrong edge is worse than
a missing one.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from kmed.data.kb import KnowledgeBase

_KO_SALTS = (
    "브롬화수소산염",
    "타르타르산수소염",
    "황산수소염",
    "이염산염",
    "염산염",
    "황산염",
    "메실산염",
    "베실산염",
    "말레산염",
    "타르타르산염",
    "푸마르산염",
    "숙신산염",
    "시트르산염",
    "구연산염",
    "인산염",
    "아세트산염",
    "초산염",
    "질산염",
    "토실산염",
    "젖산염",
    "글루콘산염",
    "베실레이트",
    "메실레이트",
    "메독소밀",
    "실렉세틸",
    "히클레이트",
    "트로메타몰",
    "일수화물",
    "이수화물",
    "삼수화물",
    "반수화물",
    "수화물",
    "무수물",
    "나트륨",
    "칼륨",
    "칼슘",
    "마그네슘",
)
_EN_SALTS = (
    "hydrochloride",
    "dihydrochloride",
    "hcl",
    "hydrobromide",
    "sulfate",
    "sulphate",
    "bisulfate",
    "mesylate",
    "mesilate",
    "besylate",
    "besilate",
    "maleate",
    "tartrate",
    "bitartrate",
    "fumarate",
    "hemifumarate",
    "succinate",
    "citrate",
    "phosphate",
    "acetate",
    "nitrate",
    "tosylate",
    "lactate",
    "gluconate",
    "medoxomil",
    "cilexetil",
    "hyclate",
    "tromethamine",
    "trometamol",
    "monohydrate",
    "dihydrate",
    "trihydrate",
    "hemihydrate",
    "sesquihydrate",
    "hydrate",
    "anhydrous",
    "sodium",
    "disodium",
    "potassium",
    "dipotassium",
    "calcium",
    "magnesium",
)
# What may not be left over after removing a salt word: an ion or an acid is not a drug name.
_NOT_A_BASE = (
    set(_EN_SALTS)
    | set(_KO_SALTS)
    | {
        "구연산",
        "시트르산",
        "염산",
        "황산",
        "인산",
        "초산",
        "아세트산",
        "질산",
        "젖산",
        "citric",
        "citricacid",
        "hydroxide",
        "oxide",
        "chloride",
        "carbonate",
        "acid",
    }
)
_DROP_PHRASES = re.compile(r"(함유\s*제제|함유제제|함유|복합제|단일제|외용제|주사제|경구제|제제)$")
_COMBO_SPLIT = re.compile(r"\s*(?:\+|/|,|·|ㆍ|&|\band\b)\s*")
_PAREN = re.compile(r"[(\[（][^()\[\]（）]*[)\]）]")


def _squash(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    return re.sub(r"[\s'\"`´’\-_.]+", "", text)


def _strip_salts(name: str) -> str:
    """Remove trailing salt/hydrate words ("에스오메프라졸마그네슘삼수화물" → "에스오메프라졸") where safe."""
    lowered = unicodedata.normalize("NFKC", name).lower().strip()
    words = lowered.split()
    changed = True
    while changed and len(words) > 1:  # English: whole trailing words
        changed = False
        if words[-1] in _EN_SALTS and _squash(" ".join(words[:-1])) not in _NOT_A_BASE:
            words = words[:-1]
            changed = True
    squashed = _squash(" ".join(words))
    changed = True
    while changed:  # Korean: glued trailing suffixes
        changed = False
        for salt in _KO_SALTS:
            if squashed.endswith(salt):
                base = squashed[: -len(salt)]
                if len(base) >= 2 and base not in _NOT_A_BASE:
                    squashed = base
                    changed = True
                break
    return squashed


def name_keys(raw: str) -> list[str]:
    """Lookup keys for one ingredient name, most literal first; a combination gives one sorted key."""
    text = unicodedata.normalize("NFKC", str(raw or "")).strip()
    if not text:
        return []
    text = re.sub(r"^P_", "", text)
    text = _DROP_PHRASES.sub("", text).strip()
    inner = [m.group(0)[1:-1] for m in _PAREN.finditer(text)]
    outer = _PAREN.sub(" ", text).strip()
    keys: list[str] = []
    for candidate in [outer, *inner]:
        parts = [p for p in _COMBO_SPLIT.split(candidate) if p.strip()]
        if len(parts) > 1:
            keys.append("+".join(sorted(_strip_salts(p) for p in parts)))
            continue
        for key in (_squash(candidate), _strip_salts(candidate)):
            if key and key not in keys:
                keys.append(key)
    return [k for k in keys if len(k) >= 3 or any("가" <= ch <= "힣" for ch in k)]


def looks_like_code(value: str) -> bool:
    return bool(re.fullmatch(r"[A-Z]{0,3}\d{3,}[A-Z0-9]*|0+", value.strip()))


# DUR names of non-drug things the KB knows as interaction partners (kb_schema.SUBSTANCES keys).
_SUBSTANCE_NAMES = {
    "st_johns_wort": (
        "st. john's wort",
        "st john's wort",
        "st. johns wort",
        "hypericum",
        "세인트존스워트",
        "성요한풀",
    ),
    "grapefruit": ("grapefruit", "grapefruit juice", "자몽", "자몽주스"),
    "alcohol": ("alcohol", "ethanol", "알코올", "에탄올"),
}


class DrugMatcher:
    """KB drug ids by normalised Korean or English name; ambiguous keys match nothing."""

    def __init__(self, kb: KnowledgeBase):
        index: dict[str, set[str]] = {}
        for drug in kb.drugs.values():
            for form in dict.fromkeys([drug.name, *drug.synonyms, *drug.english]):
                for key in name_keys(form):
                    index.setdefault(key, set()).add(drug.id)
        self.index = {k: next(iter(v)) for k, v in index.items() if len(v) == 1}
        self.ambiguous = {k for k, v in index.items() if len(v) > 1}
        self._cache: dict[str, str | None] = {}
        self.drug_count = len(kb.drugs)
        self.substances = {
            k: sub for sub, names in _SUBSTANCE_NAMES.items() for n in names for k in name_keys(n)
        }
        self.children_dosed = {d.id for d in kb.drugs.values() if d.dose is not None and d.dose.children}

    def match(self, raw: str) -> str | None:
        if raw in self._cache:
            return self._cache[raw]
        found = None
        for key in name_keys(raw):
            if key in self.ambiguous:
                break
            if key in self.index:
                found = self.index[key]
                break
        self._cache[raw] = found
        return found

    def match_substance(self, names: Iterable[str]) -> str | None:
        for name in names:
            for key in name_keys(name):
                if key in self.substances:
                    return self.substances[key]
        return None

    def match_any(self, names: Iterable[str]) -> str | None:
        for name in names:
            if name and not looks_like_code(name):
                drug = self.match(name)
                if drug:
                    return drug
        return None
