"""Answer quality on held-out SFT questions: the extractive default and a model, on the same turns.

    kmed eval answers                                   # the extractive composer
    kmed eval answers --model models/gemma-kmed --out runs/tuned
    kmed eval compare runs/extractive runs/tuned        # paired: each question scored by both

The questions are the grounded part of ``kmed train make-sft``'s test split (topics never seen in
training). Each is asked in a fresh consultation through the whole agent: retrieval, the generator,
the output guard, the departments and the disclaimer. Per question:

- ``fact_recall``: the share of the reference's key facts (noun phrases, ``key_facts``) found in
  the answer. The reference is the KB section the writer's topic and aspect name (e.g. the
  symptoms of 역류성 식도염), not the training target, so the composer is not scored against itself;
- ``faithfulness``: of the distinct sentences the generator wrote, the share the output guard
  found supported by a passage they cite, before it dropped anything (a word-for-word repeat is
  dropped by the guard and counted in ``repeated_sentences`` instead);
- ``citation_validity``: of the ``[n]`` the generator wrote, the share naming a passage it was given;
- ``citation_coverage``: of the sentences the generator wrote, the share carrying a citation (the
  guard drops the others; the departments and the disclaimer the agent adds are not counted);
- ``fluency``: of the sentences the generator wrote, the share that are whole (Kiwi: the last
  morpheme is a final ending), in 해요체 (that ending ends in 요) and not a repeat of an earlier one;
- ``nothing_found``: the reply said nothing relevant was found (every sentence was dropped);
- ``ttft_s`` and ``answer_s``: first streamed token and whole reply.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from kmed.agent import texts
from kmed.agent.output_guard import verify_answer
from kmed.agent.sft_data import reference_sections
from kmed.artifacts import read_jsonl
from kmed.data.aihub.evalsets import key_fact_recall, key_facts
from kmed.eval.bench import seconds_summary
from kmed.llm.base import RecordingGenerator
from kmed.paths import default_processed_dir
from kmed.text_ko import CITATION, citation_numbers, ends_with_final_ending, split_sentences

DEFAULT_DATA = default_processed_dir() / "sft" / "test.jsonl"
SCORES = ("fact_recall", "faithfulness", "citation_validity", "citation_coverage", "fluency")
_HEADING = re.compile(r"^\s*(■.*|※.*|출처.*)$")
_BULLET = re.compile(r"^\s*[-•*]\s*")


def load_questions(path: str | Path = DEFAULT_DATA, limit: int | None = None) -> list[dict]:
    records = read_jsonl(path, dict, "kmed train make-sft 레코드", "kmed train make-sft 로 SFT 데이터(시험 분할)를 먼저 만드세요.")
    rows = [r for r in records if r.get("provenance", {}).get("kind") == "grounded"]
    return rows[:limit] if limit else rows


def body_sentences(text: str) -> list[str]:
    """The sentences of an answer's body: headings, the disclaimer and bullet marks left out."""
    sentences = []
    for line in text.splitlines():
        if not line.strip() or _HEADING.match(line):
            continue
        sentences.extend(split_sentences(_BULLET.sub("", line)))
    return sentences


def fluency(sentences: list[str]) -> float | None:
    """Share of sentences that are whole, in 해요체, and not a repeat of an earlier sentence."""
    if not sentences:
        return None
    seen: set[str] = set()
    good = 0
    for sentence in sentences:
        plain = CITATION.sub("", sentence).strip()
        core = plain.rstrip(".!?… ")
        fresh = core not in seen
        seen.add(core)
        good += fresh and core.endswith("요") and ends_with_final_ending(plain)
    return good / len(sentences)


def score_reply(raw: str, request, reply, reference: str, strict: bool = True) -> dict:
    """The scores of one answered question (see the module docstring). ``strict``: the guard's mode
    for this generator, as the agent runs it (a model's text is strict, the composer's quotes are not)."""
    written = body_sentences(raw)
    _, stats = verify_answer(raw, request.context, strict=strict) if request is not None else ("", {})
    cited = citation_numbers(raw)
    given = {p.number for p in request.context} if request is not None else set()
    facts = key_facts("", reference, "descriptive") if reference else []
    return {
        "fact_recall": key_fact_recall(reply.answer, facts) if facts else None,
        "faithfulness": (stats["supported"] / stats["medical_sentences"]) if stats.get("medical_sentences") else None,
        "citation_validity": (sum(n in given for n in cited) / len(cited)) if cited else None,
        "citation_coverage": (sum(bool(CITATION.search(s)) for s in written) / len(written)) if written else None,
        "fluency": fluency(written),
        "written_sentences": len(written),
        "repeated_sentences": stats.get("repeated", 0),  # dropped by the guard, not counted in faithfulness
        "key_facts": facts,
    }


def evaluate_answers(assistant, questions: list[dict], rows: list[dict] | None = None, progress=None) -> dict:
    """Ask every question in a fresh session; ``rows`` (cases.jsonl) gets one row per question."""
    rows = [] if rows is None else rows
    recorder = assistant.generator
    if not isinstance(recorder, RecordingGenerator):
        recorder = assistant.generator = RecordingGenerator(assistant.generator)
    for record in questions:
        recorder.last = None
        session = assistant.session()
        started = time.perf_counter()
        first = None
        reply = None
        for event, value in session.stream(record["question"]):
            if event == "token" and first is None:
                first = time.perf_counter() - started
            elif event == "reply":
                reply = value
        total = time.perf_counter() - started
        request, raw = recorder.last if recorder.last else (None, "")
        scores = score_reply(raw, request, reply, reference_sections(assistant.kb, record), strict=recorder.name != "extractive")
        nothing = texts.NOTHING_FOUND_REASON in reply.triage.reasons
        rows.append({"id": record["id"], "kind": "answer_quality", "question": record["question"],
                     "topic": record["provenance"].get("topic"), "reply_kind": reply.kind,
                     "scores": {k: scores[k] for k in SCORES}, "nothing_found": nothing,
                     "written_sentences": scores["written_sentences"], "repeated_sentences": scores["repeated_sentences"],
                     "key_facts": scores["key_facts"],
                     "ttft_s": round(first if first is not None else total, 3), "answer_s": round(total, 3),
                     "raw": raw[:600], "answer": reply.answer[:600]})
        if progress:
            progress()
    return summarize_answers(rows)


def _mean(values: list) -> float | None:
    present = [v for v in values if v is not None]
    return round(sum(present) / len(present), 4) if present else None


def summarize_answers(rows: list[dict]) -> dict:
    return {
        "questions": len(rows),
        **{name: _mean([r["scores"][name] for r in rows]) for name in SCORES},
        "scored": {name: sum(r["scores"][name] is not None for r in rows) for name in SCORES},
        "nothing_found_rate": round(sum(r["nothing_found"] for r in rows) / len(rows), 4) if rows else None,
        "written_sentences_mean": _mean([r["written_sentences"] for r in rows]),
        "answers_with_a_repeat": sum(bool(r.get("repeated_sentences")) for r in rows),
        "ttft_s": seconds_summary([r["ttft_s"] for r in rows]),
        "answer_s": seconds_summary([r["answer_s"] for r in rows]),
    }
