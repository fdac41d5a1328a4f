"""Grounded SFT records made by the consultation itself: writers' questions, the agent's own
retrieval, and the extractive composer's verified answer as the target.

    kmed train make-sft --out data/processed/sft        # train.jsonl, test.jsonl, manifest.json

Questions come from ``data/sft/questions_*.jsonl``: patients' words for KB topics, written by
separate writers who saw only topic names (never the KB, the rules or the evaluation sets). Each
question runs through a real turn of ``Session`` with the extractive composer capped at
``TARGET_SENTENCES``. The turn's own ``GenerationRequest`` (the numbered passages the agent
retrieved for it) becomes the record's context, and the composer's text, passed through the strict
output guard a model will face, becomes the answer. So a model trained on these reads exactly the
prompt the agent will give it and learns the reply shape: short parts, a sentence per line, every
sentence with its ``[n]``. Departments, drug-safety notes and the disclaimer are added by the agent
around every generator, so they are not in the target (and cost the model no tokens).

Three more shapes, so the model answers them rightly when it meets them:

- **nothing relevant**: a question with another topic's passages; the answer is ``UNANSWERABLE``;
- **emergencies** (classifier utterances in ``data/triage`` labelled emergency): the policy's reply;
- **harmful requests** (labelled harmful): the policy's refusal.

The split is by topic: ``TEST_SHARE`` of the topics (seeded hash) are held out, so no test topic
is seen in training. Triage utterances are split by their own hash.

**AI Hub, when the user has it** (``kmed data prepare`` wrote ``data/processed/mix/``):
``mix_prepared_aihub`` puts these records in the medical bucket beside AI Hub's medical QA and adds
the other buckets of ``configs/data_mix.yaml`` in the brief's proportion to it (20 : 50 for general
dialogue and passages). The compression bucket (worked solutions, ``distill_text``) is not LoRA
data: it stays in ``data/processed/mix/compression`` for distillation, and the manifest says so.
The test split stays kmed's own.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter
from pathlib import Path

from kmed.agent.answer import context_size
from kmed.agent.output_guard import verify_answer
from kmed.agent.session import Session
from kmed.artifacts import atomic_folder, read_jsonl
from kmed.errors import ConfigError
from kmed.llm.base import MODEL_CONTEXT_PASSAGES, GenerationRequest, RecordingGenerator
from kmed.llm.extractive import ExtractiveGenerator
from kmed.llm.training.data import UNANSWERABLE, validate_record, write_records
from kmed.paths import PROJECT_ROOT

QUESTIONS_DIR = PROJECT_ROOT / "data" / "sft"
TRIAGE_DIR = PROJECT_ROOT / "data" / "triage"
TARGET_SENTENCES = 4  # a short answer (~100 tokens) keeps a CPU model near the 3-second goal
TEST_SHARE = 0.1
SALT = "kmed-sft-split-v1"
UNANSWERABLE_EVERY = 8  # one question in 8 also appears with another topic's passages
EMERGENCY_EXAMPLES = 80
REFUSAL_EXAMPLES = 50
# What each writer's aspect asks for, as KB sections (the reference an answer is scored against).
ASPECT_SECTIONS = {
    "what": "overview", "symptoms": "symptoms", "causes": "causes", "treatment": "treatment",
    "self_care": "self_care", "when_to_see": "when_to_see_doctor", "prevention": "prevention",
    "dosage": "dosage", "cautions": "cautions", "side_effects": "side_effects",
}


def _hash(*parts: str) -> str:
    return hashlib.sha256("\x1f".join((SALT, *parts)).encode()).hexdigest()


def is_test(key: str, share: float = TEST_SHARE) -> bool:
    return int(_hash(key)[:8], 16) / 0xFFFFFFFF < share


def recording_composer(max_sentences: int = TARGET_SENTENCES,
                       context_passages: int = MODEL_CONTEXT_PASSAGES) -> RecordingGenerator:
    """The extractive composer with shorter answers, given as many passages as a model reads by
    default (so a record's prompt is the prompt the model will get), remembering what it wrote."""
    return RecordingGenerator(ExtractiveGenerator(max_sentences=max_sentences, context_passages=context_passages))


def read_questions(folder: Path = QUESTIONS_DIR) -> list[dict]:
    rows = []
    files = sorted(folder.glob("questions_*.jsonl"))
    if not files:
        raise ConfigError(f"'{folder}'에 questions_*.jsonl 파일이 없어요.", "저장소의 data/sft/ 폴더를 확인하세요.")
    for path in files:
        def parse(row: dict, writer: str = path.stem) -> dict:
            return {"topic": row["topic"], "text": row["text"].strip(), "aspect": row.get("aspect", ""),
                    "register": row.get("register", ""), "writer": writer}

        rows.extend(read_jsonl(path, parse, '{"topic": …, "text": …, "aspect": …}'))
    return rows


def _context(request: GenerationRequest) -> list[dict]:
    return [{"number": p.number, "title": p.title, "text": p.text, "source": p.source} for p in request.context]


def _record(kind: str, key: str, question: str, context: list[dict], answer: str, **provenance) -> dict:
    return {"id": f"sft:{kind}:{_hash(key, question)[:12]}", "task": "grounded_qa", "question": question,
            "context": context, "answer": answer, "provenance": {"kind": kind, **provenance}}


def grounded_record(assistant, composer: RecordingGenerator, row: dict) -> tuple[dict | None, str]:
    """One writer question through a real turn. Returns (record or None, what happened)."""
    composer.last = None
    reply = Session(assistant).ask(row["text"])
    if composer.last is None:
        return None, f"policy:{reply.kind}"  # a clarifying question, an emergency, …: not a grounded answer
    request, text = composer.last
    verified, _ = verify_answer(text, request.context, strict=True)
    context = _context(request)
    if not verified.strip():
        return _record("unanswerable", row["topic"], row["text"], context, UNANSWERABLE, topic=row["topic"],
                       aspect=row["aspect"], register=row["register"], writer=row["writer"]), "nothing_found"
    return _record("grounded", row["topic"], row["text"], context, verified.strip(), topic=row["topic"],
                   aspect=row["aspect"], register=row["register"], writer=row["writer"],
                   intent=request.intent), "grounded"


def policy_record(assistant, kind: str, utterance: dict) -> dict | None:
    """An emergency or harmful message: the policy's own reply, with the passages retrieval finds."""
    reply = Session(assistant).ask(utterance["text"])
    wanted = {"emergency": reply.kind == "emergency", "refusal": reply.refused}[kind]
    if not wanted:
        return None
    hits = assistant.retriever.search(utterance["text"], k=context_size(assistant))
    context = [{"number": i + 1, "title": h.title, "text": h.text, "source": h.metadata.get("source", "")} for i, h in enumerate(hits)]
    return _record(kind, utterance["text"], utterance["text"], context, reply.answer.strip(),
                   register=utterance.get("register", ""), target=utterance.get("target"))


def _triage_utterances(label_key: str, label: str, count: int, seed: int) -> list[dict]:
    rows = [row for path in sorted(TRIAGE_DIR.glob("*.jsonl")) for row in read_jsonl(path, dict, '{"text": …}')
            if row.get(label_key) == label]
    rows.sort(key=lambda r: _hash(str(seed), r["text"]))
    return rows[:count]


def build_sft(assistant, seed: int = 0, questions: list[dict] | None = None, progress=None) -> dict:
    """All records, split by topic. ``assistant`` must use ``recording_composer()``."""
    composer = assistant.generator
    if not isinstance(composer, RecordingGenerator) or composer.name != "extractive":
        raise ConfigError("build_sft에는 recording_composer()를 쓰는 Assistant가 필요해요.")
    questions = read_questions() if questions is None else questions
    splits: dict[str, list[dict]] = {"train": [], "test": []}
    outcomes: Counter = Counter()
    grounded: list[dict] = []
    for row in questions:
        record, outcome = grounded_record(assistant, composer, row)
        outcomes[outcome] += 1
        if record is not None:
            splits["test" if is_test(row["topic"]) else "train"].append(record)
            if outcome == "grounded":
                grounded.append(record)
        if progress:
            progress()
    # Nothing relevant: a question with the passages retrieved for another topic's question.
    rng = random.Random(seed)
    for index, record in enumerate(grounded):
        if index % UNANSWERABLE_EVERY != UNANSWERABLE_EVERY - 1:
            continue
        topic = record["provenance"]["topic"]
        entry = assistant.kb.conditions.get(topic) or assistant.kb.drugs.get(topic)
        name = entry.name if entry is not None else topic
        others = [r for r in grounded if r["provenance"]["topic"] != topic
                  and is_test(r["provenance"]["topic"]) == is_test(topic)
                  and not any(name in c["title"] or name in c["text"] for c in r["context"])]
        if others:
            donor = rng.choice(others)
            splits["test" if is_test(topic) else "train"].append(
                _record("unanswerable", topic + ":swap", record["question"], donor["context"], UNANSWERABLE,
                        topic=topic, donor=donor["id"]))
            outcomes["unanswerable_swap"] += 1
    for kind, label_key, label, count in (("emergency", "triage", "emergency", EMERGENCY_EXAMPLES),
                                          ("refusal", "intent", "harmful", REFUSAL_EXAMPLES)):
        for utterance in _triage_utterances(label_key, label, count, seed):
            record = policy_record(assistant, kind, utterance)
            outcomes[f"{kind}:{'kept' if record else 'policy_disagreed'}"] += 1
            if record is not None:
                splits["test" if is_test(utterance["text"]) else "train"].append(record)
    for records in splits.values():
        records.sort(key=lambda r: r["id"])
    return {"splits": splits, "outcomes": dict(outcomes),
            "topics": {"train": len({r["provenance"].get("topic") for r in splits["train"]} - {None}),
                       "test": len({r["provenance"].get("topic") for r in splits["test"]} - {None})}}


def write_sft(result: dict, out: Path, info: dict) -> dict:
    """Write train.jsonl, test.jsonl and manifest.json into ``out`` through a temporary folder."""
    counts: dict[str, int] = {}
    with atomic_folder(out) as staged:
        for name, records in result["splits"].items():
            counts[name] = write_records(records, staged / f"{name}.jsonl")
        kinds = {name: dict(Counter((r.get("provenance") or {}).get("kind") or "aihub" for r in records))
                 for name, records in result["splits"].items()}
        manifest = {"kind": "kmed_sft_data", "format_version": 1, "records": counts, "kinds": kinds,
                    "topics": result["topics"], "outcomes": result["outcomes"], "test_share": TEST_SHARE, "salt": SALT,
                    "target_sentences": TARGET_SENTENCES, **info}
        (staged / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
    return manifest


LORA_TASKS = ("grounded_qa", "dialogue")  # the record shapes kmed train lora reads
MEDICAL_BUCKET = "medical"


def mix_prepared_aihub(train: list[dict], prepared: Path, config=None) -> tuple[list[dict], dict]:
    """kmed's train records plus a user's prepared AI Hub mix, in ``configs/data_mix.yaml``'s proportions.

    ``prepared`` is ``kmed data prepare``'s ``--out`` (it holds ``mix/<bucket>/train.jsonl``). Our
    records join the medical bucket; each other bucket with LoRA-readable records adds
    ``ratio / medical ratio`` times the medical count, fewer when it has fewer (the report says so),
    in the stable order ``kmed data prepare`` wrote. Returns (train records, report).
    """
    from kmed.data.aihub.config import PipelineConfig

    buckets = (config or PipelineConfig.load()).mix.buckets
    folder = Path(prepared) / "mix"
    if MEDICAL_BUCKET not in buckets:
        raise ConfigError("configs/data_mix.yaml › mix 에 medical 묶음이 없어요.", "medical 묶음을 되살리세요.")
    readable: dict[str, list[dict]] = {}
    report: dict = {"source": str(prepared), "ratios": {k: b.ratio for k, b in buckets.items()}, "available": {},
                    "taken": {}, "not_lora": {}, "notes": []}
    for name in buckets:
        path = folder / name / "train.jsonl"
        rows = read_jsonl(path, dict, '{"task": "grounded_qa", …}') if path.is_file() else []
        bad = [r.get("id", "?") for r in rows if r.get("task") in LORA_TASKS and validate_record(r)]
        if bad:
            raise ConfigError(f"{path}: 학습에 쓸 수 없는 레코드가 {len(bad)}개 있어요 (예: {bad[0]}).",
                              "kmed data prepare 를 다시 실행하세요.")
        readable[name] = [r for r in rows if r.get("task") in LORA_TASKS]
        report["available"][name] = len(readable[name])
        if len(rows) > len(readable[name]):
            report["not_lora"][name] = len(rows) - len(readable[name])
    medical = [*train, *readable[MEDICAL_BUCKET]]
    taken = {MEDICAL_BUCKET: len(medical)}
    mixed = list(medical)
    for name, bucket in buckets.items():
        if name == MEDICAL_BUCKET or not readable[name]:
            continue
        want = round(bucket.ratio / buckets[MEDICAL_BUCKET].ratio * len(medical))
        take = readable[name][:want]
        if len(take) < want:
            report["notes"].append(f"{name}: {want}개가 필요했지만 {len(take)}개뿐이라 비율이 낮아요.")
        taken[name] = len(take)
        mixed.extend(take)
    for name, count in report["not_lora"].items():
        report["notes"].append(f"{name}: {count}개는 LoRA 형식이 아니라 (증류용) data/processed/mix/{name} 에 남겨요.")
    report["taken"] = taken
    report["shares"] = {k: round(v / len(mixed), 4) for k, v in taken.items()} if mixed else {}
    mixed.sort(key=lambda r: _hash(str(r.get("id", "")), "mix"))
    return mixed, report


def reference_sections(kb, record: dict) -> str:
    """The KB text a grounded test question asks about (its topic's section), for fact recall."""
    topic, aspect = record["provenance"].get("topic"), record["provenance"].get("aspect", "")
    entry = kb.conditions.get(topic) or kb.drugs.get(topic)
    if entry is None:
        return ""
    section = ASPECT_SECTIONS.get(aspect, "overview")
    return (entry.sections.get(section) or entry.sections.get("overview") or "").strip()

