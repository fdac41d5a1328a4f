"""필수의료 의학지식 (71875) and 전문 의학지식 (71874): QA label files and source (원천) texts.

Both datasets share one schema (see /work/shared/reference/aihub_formats.md §1–2):
- label ``필수_<n>.json`` / ``전문_<n>.json``: ``qa_id, domain, q_type, question, answer``; for
  q_type 1 the five options sit inside ``question`` as ``1) …`` lines and the answer starts with
  ``3)`` or ``③``;
- source: ``c_id, domain, source, source_spec, creation_year, content`` in ``TS_국문_<kind>.zip``.

Lenient where the reference says GUESS/UNVERIFIED: ids may be int or str, ``domain`` may be
missing (the department then comes from the ``TL_<과>`` folder), ``creation_year`` may be "null",
``q_type`` may be a word, and an unparsable multiple-choice item is kept as a short-answer item.
"""

from __future__ import annotations

from kmed.data.aihub.choices import answer_label, split_question, strip_label
from kmed.data.aihub.loading import (
    FileContext,
    FormatError,
    Loader,
    id_field,
    int_field,
    register_loader,
    text_field,
)
from kmed.data.aihub.records import DOMAINS, Q_TYPES, QA, Document, Provenance, Record, make_uid
from kmed.data.aihub.report import Report
from kmed.data.aihub.text import guess_lang, sentences

_Q_TYPE_WORDS = {"객관식": "mcq", "단답형": "short", "단답식": "short", "서술형": "descriptive", "서술식": "descriptive"}
_MEDICAL = ("essential", "specialist")


def department_of(domain: int | None, folder: str) -> str:
    if domain in DOMAINS:
        return DOMAINS[domain]
    return folder


def _q_type(value: object) -> str:
    if isinstance(value, int) and value in Q_TYPES:
        return Q_TYPES[value]
    text = str(value or "").strip()
    if text.isdigit() and int(text) in Q_TYPES:
        return Q_TYPES[int(text)]
    return _Q_TYPE_WORDS.get(text, "")


def _explanation(rest: str, option: str) -> str:
    """What an MCQ answer says after naming its option: the lines below it, or the whole rest when
    it does not repeat the option ("③" alone gives ""; "2) A 복용한다." is still the option line)."""
    if not rest.startswith(option):
        return rest if "\n" not in rest else rest.split("\n", 1)[1].strip()
    return rest.split("\n", 1)[1].strip() if "\n" in rest else ""


@register_loader(10)
class MedicalLoader(Loader):
    def sniff(self, obj: dict, ctx: FileContext) -> str | None:
        is_qa = "qa_id" in obj and "question" in obj
        is_doc = "c_id" in obj and "content" in obj
        if not (is_qa or is_doc):
            return None
        if ctx.dataset_hint in _MEDICAL:
            return ctx.dataset_hint
        if ctx.name.startswith("필수"):
            return "essential"
        if ctx.name.startswith("전문"):
            return "specialist"
        domain = int_field(obj, "domain")
        return "essential" if domain is not None and domain >= 14 else "specialist"

    def load(self, obj: dict, ctx: FileContext, dataset: str, report: Report) -> list[Record]:
        if "qa_id" in obj:
            return [self._qa(obj, ctx, dataset, report)]
        return [self._document(obj, ctx, dataset)]

    def _qa(self, obj: dict, ctx: FileContext, dataset: str, report: Report) -> QA:
        native = id_field(obj, "qa_id")
        question = text_field(obj, "question")
        answer = text_field(obj, "answer")
        domain = int_field(obj, "domain")
        department = department_of(domain, ctx.container())
        q_type = _q_type(obj.get("q_type"))
        stem, options = split_question(question)
        if not q_type:
            q_type = "mcq" if options else ("short" if len(answer) <= 40 else "descriptive")
        label, explanation = "", ""
        if q_type == "mcq":
            label = answer_label(answer, options) if options else ""
            if not (options and label):
                report.skip("mcq_unparsed", ctx.path, f"qa_id {native}")
                q_type, stem, options = ("short" if len(answer) <= 40 else "descriptive"), question, {}
            else:
                explanation = _explanation(strip_label(answer), options[label])
        else:
            stem, options = question, {}
        return QA(
            uid=make_uid(dataset, "qa", native),
            prov=Provenance(dataset, ctx.aihub_split, ctx.path, native),
            domain=str(domain) if domain is not None else department,
            question=stem,
            answer=answer,
            q_type=q_type,
            options=options,
            answer_label=label,
            explanation=explanation,
            department=department,
            lang=guess_lang(question + answer),
        )

    def _document(self, obj: dict, ctx: FileContext, dataset: str) -> Document:
        native = id_field(obj, "c_id")
        content = text_field(obj, "content")
        domain = int_field(obj, "domain")
        container = ctx.container(("ts", "vs"))  # e.g. "국문_의학_교과서"
        lang_word, _, kind = container.replace("_", " ").partition(" ")
        lang = {"국문": "ko", "영문": "en"}.get(lang_word) or guess_lang(content)
        source_code = obj.get("source")
        source_kind = kind.strip() if lang_word in ("국문", "영문") else ""
        if not source_kind and isinstance(source_code, str) and not source_code.strip().isdigit():
            source_kind = source_code.strip()
        spec = text_field(obj, "source_spec", required=False)
        year = text_field(obj, "creation_year", required=False)
        year = "" if year.casefold() in ("null", "none", "nan") else year
        if not content.strip():
            raise FormatError("missing_field", "content")
        first = sentences(content)[0] if content else ""
        return Document(
            uid=make_uid(dataset, "doc", native),
            prov=Provenance(dataset, ctx.aihub_split, ctx.path, native),
            domain=str(domain) if domain is not None else "",
            title=spec or first[:80],
            text=content,
            lang=lang,
            department=department_of(domain, ""),
            source_kind=source_kind,
            source_spec=spec,
            year=year,
        )
