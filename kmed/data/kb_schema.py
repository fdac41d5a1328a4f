"""Typed schema of the curated knowledge base in ``data/kb/``.

Every KB file is YAML with one top-level key naming the entry type (``conditions``,
``symptoms``, ``drugs``, ``departments``, ``tests``, ``topics``, ``red_flags``, ``sources``) and a list
of entries. ``kmed kb validate`` loads every file through these models and reports each error
with its file, entry id and field.

Id prefixes are fixed so a reference says what it points to:
``cond.`` conditions, ``sym.`` symptoms, ``drug.`` drugs, ``dept.`` departments,
``test.`` diagnostic tests, ``topic.`` topics (reference values, screening and vaccination
schedules, treatment durations, hotlines, corrected health myths), ``rf.`` red-flag rules.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

ID_PREFIX = {
    "condition": "cond.",
    "symptom": "sym.",
    "drug": "drug.",
    "department": "dept.",
    "test": "test.",
    "topic": "topic.",
    "red_flag": "rf.",
}
ID_PATTERN = re.compile(r"^(cond|sym|drug|dept|test|topic|rf)\.[a-z0-9_]+$")

# Condition sections, in the order a patient reads them, with their Korean titles.
CONDITION_SECTIONS: dict[str, str] = {
    "overview": "개요",
    "causes": "원인",
    "symptoms": "증상",
    "diagnosis": "진단",
    "treatment": "치료",
    "self_care": "자가 관리",
    "when_to_see_doctor": "병원에 가야 할 때",
    "prevention": "예방",
}
DRUG_SECTIONS: dict[str, str] = {
    "overview": "개요",
    "dosage": "복용법",
    "cautions": "주의사항",
    "side_effects": "부작용",
}


def _reject_unknown_sections(sections: dict[str, str], allowed: dict[str, str]) -> None:
    unknown = sorted(set(sections) - set(allowed))
    if unknown:
        raise ValueError(f"unknown section(s) {unknown}; allowed: {list(allowed)}")


# Groups a drug can be contraindicated in or cautioned for, besides condition ids.
POPULATIONS = {
    "pregnancy": "임신부",
    "lactation": "수유부",
    "children": "소아",
    "infants": "영아",
    "elderly": "고령자",
    "liver_disease": "간질환자",
    "kidney_disease": "신장질환자",
}
# Non-drug things a drug can interact with.
SUBSTANCES = {
    "alcohol": "술(알코올)",
    "grapefruit": "자몽",
    "caffeine": "카페인",
    "dairy": "우유·유제품",
    "antacids": "제산제",
    "iron_supplements": "철분제",
    "st_johns_wort": "세인트존스워트",
    "high_potassium_food": "칼륨이 많은 음식",
    "vitamin_k_food": "비타민 K가 많은 음식",
    "tyramine_food": "티라민이 많은 음식",
    "smoking": "흡연",
}


class Strict(BaseModel):
    """Base: unknown keys are errors, so a typo in a field name never passes silently."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class SourceRef(Strict):
    """A source cited at a specific place: a product label, a guideline section, a portal page.

    ``{id: mfds_nedrug, detail: "타이레놀8시간이알서방정 허가사항(용법·용량)"}``
    """

    id: str
    detail: str | None = Field(None, description="Which product label, page, section or table of the source.")

    @field_validator("detail")
    @classmethod
    def _detail_not_blank(cls, value: str | None) -> str | None:
        if value is not None and len(value.strip()) < 2:
            raise ValueError("detail must name the page, section or product label")
        return value


class Source(Strict):
    id: str = Field(pattern=r"^[a-z0-9_]+$")
    title: str
    publisher: str
    url: str | None = Field(None, description="Public URL; https only.")
    year: int | None = Field(None, description="Year of the edition the KB follows.")
    edition: str | None = Field(None, description="Edition, revision or season, e.g. '제5판', '2025-2026절기'.")
    kind: Literal["portal", "guideline", "label", "textbook", "statistics", "dataset", "other"] = "other"

    @field_validator("url")
    @classmethod
    def _https(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("https://"):
            raise ValueError("url must be a public https:// address")
        return value


class Entry(Strict):
    """Fields every entity shares."""

    id: str
    name: str = Field(min_length=1, description="Korean canonical name.")
    synonyms: list[str] = Field(default_factory=list, description="Other formal Korean names.")
    lay_terms: list[str] = Field(
        default_factory=list, description="Words and phrases people actually type, typos included."
    )
    english: list[str] = Field(default_factory=list)
    sources: list[str | SourceRef] = Field(min_length=1)

    @field_validator("id")
    @classmethod
    def _id_shape(cls, value: str) -> str:
        if not ID_PATTERN.match(value):
            raise ValueError(f"id '{value}' must look like 'cond.name_in_snake_case' with a known prefix")
        return value

    def surface_forms(self) -> list[str]:
        """Every string that should link to this entry, canonical name first, no duplicates."""
        seen: dict[str, None] = {}
        for form in [self.name, *self.synonyms, *self.lay_terms, *self.english]:
            if form and form not in seen:
                seen[form] = None
        return list(seen)

    def source_ids(self) -> list[str]:
        return [s if isinstance(s, str) else s.id for s in self.sources]

    def specific_sources(self) -> list[SourceRef]:
        """Sources cited at a named product label, page or section (``{id, detail}``)."""
        return [s for s in self.sources if isinstance(s, SourceRef) and s.detail]


class Codes(Strict):
    kcd: str | None = Field(None, description="KCD-8 code (Korean ICD-10 adaptation).")
    icd10: str | None = None
    atc: str | None = None


class ConditionSymptoms(Strict):
    typical: list[str] = Field(min_length=1)
    red_flag: list[str] = Field(default_factory=list)


class Urgency(Strict):
    """How soon a condition needs care when it presents acutely, with the source that says so.

    A condition without ``urgency`` is ``routine``: none of its typical presentations needs same-day care.
    """

    level: Literal["emergency", "urgent"]
    reason: str = Field(min_length=10, description="Why, in one Korean 해요체 sentence.")
    sources: list[str] = Field(min_length=1)


class Condition(Entry):
    codes: Codes = Field(default_factory=Codes)
    urgency: Urgency | None = None
    departments: list[str] = Field(min_length=1)
    symptoms: ConditionSymptoms
    tests: list[str] = Field(default_factory=list)
    treatments: list[str] = Field(default_factory=list, description="First-line treatment classes, Korean.")
    drugs: list[str] = Field(default_factory=list)
    risk_factors: list[str] = Field(
        default_factory=list, description="Condition ids, or short Korean phrases such as '흡연'."
    )
    complications: list[str] = Field(default_factory=list, description="Condition ids this one can lead to.")
    is_a: list[str] = Field(default_factory=list, description="Broader condition ids.")
    sections: dict[str, str]

    @field_validator("sections")
    @classmethod
    def _all_sections(cls, value: dict[str, str]) -> dict[str, str]:
        _reject_unknown_sections(value, CONDITION_SECTIONS)
        missing = [k for k in CONDITION_SECTIONS if not (value.get(k) or "").strip()]
        if missing:
            raise ValueError(f"missing or empty section(s) {missing}")
        return value


class Symptom(Entry):
    body_part: str | None = None
    departments: list[str] = Field(default_factory=list)
    description: str | None = None


class Dose(Strict):
    adult: str = Field(description="Adult label dose, e.g. '1회 500~1,000 mg, 4~6시간 간격'.")
    max_daily: str | None = Field(None, description="Adult maximum daily dose from the label.")
    children: str | None = None


class Contraindication(Strict):
    population: str = Field(description="A POPULATIONS key or a condition id.")
    level: Literal["contraindicated", "caution"]
    note: str


class Interaction(Strict):
    with_: str = Field(alias="with", description="A drug id or a SUBSTANCES key.")
    severity: Literal["major", "moderate", "minor"]
    note: str

    model_config = ConfigDict(extra="forbid", populate_by_name=True, str_strip_whitespace=True)


class Drug(Entry):
    codes: Codes = Field(default_factory=Codes)
    brands: list[str] = Field(default_factory=list, description="Korean brand examples of this ingredient.")
    drug_class: str
    otc: bool = False
    uses: list[str] = Field(default_factory=list, description="Condition or symptom ids it treats.")
    dose: Dose | None = None
    contraindications: list[Contraindication] = Field(default_factory=list)
    interactions: list[Interaction] = Field(default_factory=list)
    side_effects: list[str] = Field(default_factory=list)
    sections: dict[str, str]

    def surface_forms(self) -> list[str]:
        forms = super().surface_forms()
        return forms + [b for b in self.brands if b not in forms]

    @field_validator("sections")
    @classmethod
    def _known_sections(cls, value: dict[str, str]) -> dict[str, str]:
        _reject_unknown_sections(value, DRUG_SECTIONS)
        if not (value.get("overview") or "").strip():
            raise ValueError("section 'overview' is required")
        return value

    @model_validator(mode="after")
    def _otc_needs_dose(self) -> Drug:
        if self.otc and (self.dose is None or not self.dose.max_daily):
            raise ValueError("an OTC drug needs dose.adult and dose.max_daily from its label")
        if self.otc:
            # max_daily is rendered into the dosage passage, so it must read as a whole sentence.
            text = self.dose.max_daily.strip()
            if not (_SENTENCE_END.search(text) and _MAX_PERIOD.search(text) and re.search(r"\d", text)):
                raise ValueError(
                    "an OTC drug's dose.max_daily must be one whole 해요체 sentence giving the label's daily "
                    "maximum with a number (e.g. '하루 8정(4,000 mg)을 넘기지 않아요.')"
                )
        return self


class Department(Entry):
    description: str


class DiagnosticTest(Entry):
    description: str


class RedFlagPattern(Strict):
    """One way a rule can fire. Every part given must hold; at least one of the first three is given.

    Entity ids must be mentioned and not negated (anywhere in the session so far); ``text_any``
    are regular expressions matched on the current message with spaces removed.
    """

    all_of: list[str] = Field(default_factory=list)
    any_of: list[str] = Field(default_factory=list)
    text_any: list[str] = Field(default_factory=list)
    age_months_max: int | None = Field(None, description="Only for people at most this many months old.")
    age_years_min: int | None = None
    pregnant: bool | None = None

    @model_validator(mode="after")
    def _has_signal(self) -> RedFlagPattern:
        if not (self.all_of or self.any_of or self.text_any):
            raise ValueError("a pattern needs all_of, any_of or text_any")
        for rx in self.text_any:
            try:
                re.compile(rx)
            except re.error as exc:
                raise ValueError(f"text_any regex {rx!r} does not compile: {exc}") from exc
        return self


class RedFlagExamples(Strict):
    trigger: list[str] = Field(min_length=1)
    no_trigger: list[str] = Field(min_length=1)


class RedFlagRule(Strict):
    id: str
    name: str
    level: Literal["emergency", "urgent"]
    category: Literal["medical", "self_harm", "poisoning"] = "medical"
    reason: str = Field(description="Why this is dangerous, one Korean sentence shown to the user.")
    action: str = Field(description="What to do now, one Korean sentence.")
    hotlines: list[str] = Field(min_length=1)
    patterns: list[RedFlagPattern] = Field(min_length=1)
    conditions: list[str] = Field(default_factory=list, description="Condition ids this pattern may signal.")
    departments: list[str] = Field(default_factory=list)
    examples: RedFlagExamples
    sources: list[str | SourceRef] = Field(min_length=1)

    @field_validator("id")
    @classmethod
    def _id_shape(cls, value: str) -> str:
        if not value.startswith("rf.") or not ID_PATTERN.match(value):
            raise ValueError(f"red-flag id '{value}' must look like 'rf.name_in_snake_case'")
        return value

    def source_ids(self) -> list[str]:
        return [s if isinstance(s, str) else s.id for s in self.sources]

    def specific_sources(self) -> list[SourceRef]:
        return [s for s in self.sources if isinstance(s, SourceRef) and s.detail]


# Topic kinds and the Korean title of their passages.
TOPIC_KINDS: dict[str, str] = {
    "myth": "건강 상식 바로잡기",
    "reference_values": "정상 범위와 진단 기준",
    "screening": "검진 안내",
    "vaccination": "예방접종 일정",
    "treatment_duration": "치료 기간",
    "hotline": "상담 전화",
}
# A sentence a patient may read word for word: polite 해요체 (or a plain 다-ending), ends with a period.
_SENTENCE_END = re.compile(r"(요|다)\.$")
# An OTC label maximum: a whole sentence that names a daily (or weekly) limit with a number.
_MAX_PERIOD = re.compile(r"하루|\d+ ?일|24시간|주 ?\d|한 번에")


class Topic(Entry):
    """A topic that is not one disease, symptom, drug or test: the numbers and schedules people ask
    for, hotlines, and corrections of common health myths.

    Each of ``sentences`` is one self-contained claim, quoted verbatim in answers. For ``kind: myth``,
    ``myth`` states the belief being corrected (for titles and linking; never quoted on its own) and
    the first sentence says plainly whether it is true.
    """

    kind: Literal["myth", "reference_values", "screening", "vaccination", "treatment_duration", "hotline"]
    myth: str | None = Field(None, description="The belief corrected, in lay words (kind: myth only).")
    sentences: list[str] = Field(min_length=1)
    related: list[str] = Field(default_factory=list, description="Condition, symptom, drug or test ids.")
    departments: list[str] = Field(default_factory=list)

    @field_validator("sentences")
    @classmethod
    def _whole_sentences(cls, value: list[str]) -> list[str]:
        for sentence in value:
            text = sentence.strip()
            if not _SENTENCE_END.search(text):
                raise ValueError(f"each sentence must be one whole 해요체 sentence ending with '요.': {text!r}")
        return value

    @model_validator(mode="after")
    def _myth_field(self) -> Topic:
        if (self.kind == "myth") != bool(self.myth):
            raise ValueError("'myth' is required for kind: myth and only there")
        return self


# File top-level key -> entry model.
SECTION_MODELS: dict[str, type[BaseModel]] = {
    "sources": Source,
    "departments": Department,
    "tests": DiagnosticTest,
    "topics": Topic,
    "symptoms": Symptom,
    "conditions": Condition,
    "drugs": Drug,
    "red_flags": RedFlagRule,
}
