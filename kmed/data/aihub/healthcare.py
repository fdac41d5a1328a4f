"""초거대AI 사전학습용 헬스케어 질의응답 (71762): questions and answers paired by disease and intention.

Layout (aihub_formats.md §3): ``TL/1.질문/<분류>/<질병>/<의도>/HC-Q-*.json`` and
``TL/2.답변/<분류>/<질병>/<의도>/HC-A-*.json``. Questions and answers share no id: a question is
paired with an answer of the same (AI Hub split, disease, intention), the one sharing the most
content words with it (ties broken by a stable hash). Every answer also becomes a ``Document``, so
the answers reach retrieval even when no question points at them. A question whose folder has no
answer is skipped and reported.
"""

from __future__ import annotations

from collections import defaultdict

from kmed.data.aihub.loading import FileContext, FormatError, Loader, id_field, register_loader, text_field
from kmed.data.aihub.records import QA, Document, Provenance, Record, make_uid
from kmed.data.aihub.report import Report
from kmed.data.aihub.split import stable_hash
from kmed.data.aihub.text import clean_text, content_terms, norm_key

DATASET = "healthcare_qa"
_ANSWER_PARTS = ("intro", "body", "conclusion")


def _is_question(obj: dict) -> bool:
    name = str(obj.get("fileName", ""))
    return name.startswith("HC-Q") or (isinstance(obj.get("question"), str) and "intention" in obj and "disease_name" in obj)


def _is_answer(obj: dict) -> bool:
    name = str(obj.get("fileName", ""))
    return name.startswith("HC-A") or (isinstance(obj.get("answer"), dict) and "intention" in obj)


def _disease(obj: dict) -> tuple[str, str]:
    value = obj.get("disease_name")
    if isinstance(value, dict):
        return clean_text(str(value.get("kor") or "")), clean_text(str(value.get("eng") or ""))
    return clean_text(str(value or "")), ""


def _folder_key(ctx: FileContext) -> tuple[str, str]:
    """(disease, intention) from ``…/<질병>/<의도>/<file>`` when the JSON lacks them."""
    parts = ctx.parts
    return (parts[-3], parts[-2]) if len(parts) >= 3 else ("", "")


def _answer_text(value: object) -> str:
    if isinstance(value, dict):
        return clean_text(" ".join(str(value.get(k) or "").strip() for k in _ANSWER_PARTS if value.get(k)))
    if isinstance(value, str):
        return clean_text(value)
    raise FormatError("bad_field", f"answer: {type(value).__name__}")


@register_loader(20)
class HealthcareLoader(Loader):
    def __init__(self) -> None:
        self._questions: list[tuple[tuple[str, str, str], QA]] = []
        self._answers: dict[tuple[str, str, str], list[Document]] = defaultdict(list)

    def sniff(self, obj: dict, ctx: FileContext) -> str | None:
        return DATASET if _is_question(obj) or _is_answer(obj) else None

    def _key(self, obj: dict, ctx: FileContext) -> tuple[str, str, str]:
        disease, _ = _disease(obj)
        folder_disease, folder_intention = _folder_key(ctx)
        intention = clean_text(str(obj.get("intention") or "")) or folder_intention
        return ctx.aihub_split, norm_key(disease or folder_disease), norm_key(intention)

    def load(self, obj: dict, ctx: FileContext, dataset: str, report: Report) -> list[Record]:
        native = id_field(obj, "fileName") if obj.get("fileName") else ctx.stem
        disease, disease_en = _disease(obj)
        disease = disease or _folder_key(ctx)[0]
        intention = clean_text(str(obj.get("intention") or "")) or _folder_key(ctx)[1]
        category = clean_text(str(obj.get("disease_category") or ""))
        meta = {"disease": disease, "disease_en": disease_en, "intention": intention, "category": category}
        prov = Provenance(DATASET, ctx.aihub_split, ctx.path, native)
        if _is_answer(obj):
            departments = obj.get("department")
            department = departments[0] if isinstance(departments, list) and departments else str(departments or "")
            document = Document(
                uid=make_uid(DATASET, "answer", native),
                prov=prov,
                domain=category,
                meta=meta,
                title=" · ".join(x for x in (disease, intention) if x),
                text=_answer_text(obj.get("answer")),
                department=clean_text(department),
                source_kind="의료진 답변",
            )
            if not document.text:
                raise FormatError("missing_field", "answer")
            self._answers[self._key(obj, ctx)].append(document)
            return [document]
        question = QA(
            uid=make_uid(DATASET, "qa", native),
            prov=prov,
            domain=category,
            meta=meta,
            question=text_field(obj, "question"),
            q_type="healthcare",
        )
        self._questions.append((self._key(obj, ctx), question))
        return []

    def finish(self, report: Report) -> list[Record]:
        paired: list[Record] = []
        answer_terms: dict[str, set[str]] = {}
        for key, question in self._questions:
            answers = self._answers.get(key)
            if not answers:
                report.skip("no_answer_in_folder", question.prov.file, " / ".join(question.meta[k] for k in ("disease", "intention")))
                continue
            terms = set(content_terms(question.question))
            best = max(
                answers,
                key=lambda doc: (
                    len(terms & answer_terms.setdefault(doc.uid, set(content_terms(doc.text)))),
                    -stable_hash(doc.uid, question.uid),
                ),
            )
            question.answer = best.text
            question.department = best.department
            question.meta = {**question.meta, "answer_id": best.prov.id, "answer_file": best.prov.file}
            paired.append(question)
        self._questions.clear()
        self._answers.clear()
        return paired
