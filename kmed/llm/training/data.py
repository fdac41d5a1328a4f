"""Grounded-QA records for LoRA SFT: made from the KB, or read from JSONL, then tokenized.

    kmed train make-data --out data/processed/kb_grounded_qa.jsonl     # look at what the model learns
    kmed train lora --base models/polyglot-ko-1.3b --out models/kmed-lora --data my.jsonl

One record (the AI Hub pipeline writes the same shape)::

    {"id": "kb:cond.gerd:symptoms", "task": "grounded_qa", "question": "역류성 식도염의 증상은 뭐예요?",
     "context": [{"number": 1, "title": "…", "text": "…", "source": "…"}, …],
     "answer": "가슴이 타는 듯한 쓰림과 … 대표적이에요 [2]. …", "provenance": {…}}

The prompt is built by ``kmed.llm.prompts.build_prompt``, the same function inference uses, so
the model is trained on exactly what it will read. Loss falls on answer tokens only.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from kmed.artifacts import line_errors, read_jsonl_lines
from kmed.errors import ConfigError
from kmed.llm.base import ContextPassage, GenerationRequest
from kmed.llm.prompts import build_prompt, cited_numbers
from kmed.text_ko import has_final_consonant, josa, split_sentences

IGNORE_INDEX = -100  # label value the loss skips (prompt and padding)
REQUIRED_KEYS = ("id", "task", "question", "context", "answer")
UNANSWERABLE = "제공된 자료로는 알 수 없어요."

# One question per KB section; {을} etc. are filled with the particle that fits the name.
CONDITION_QUESTIONS = {
    "overview": "{은} 어떤 병이에요?",
    "causes": "{은} 왜 생겨요?",
    "symptoms": "{의} 증상은 뭐예요?",
    "diagnosis": "{은} 어떻게 진단해요?",
    "treatment": "{은} 어떻게 치료해요?",
    "self_care": "{이면} 집에서 어떻게 관리하면 돼요?",
    "when_to_see_doctor": "{이면} 언제 병원에 가야 해요?",
    "prevention": "{을} 예방하려면 어떻게 해야 해요?",
}
DRUG_QUESTIONS = {
    "overview": "{은} 어떤 약이에요?",
    "dosage": "{은} 어떻게 먹어요?",
    "cautions": "{을} 먹을 때 주의할 점은 뭐예요?",
    "side_effects": "{의} 부작용은 뭐예요?",
}


def _question(template: str, name: str) -> str:
    slot = re.search(r"\{(\S+?)\}", template).group(1)
    if slot == "의":
        filled = f"{name}의"
    elif slot == "이면":
        final = has_final_consonant(name)
        filled = name + ("(이)면" if final is None else "이면" if final else "면")
    else:
        filled = josa(name, slot)
    return template.replace("{" + slot + "}", filled)


def _seeded(*parts: str) -> random.Random:
    return random.Random(int(hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16], 16))


def cite_sentences(text: str, number: int) -> str:
    """Every sentence ends with ``[number]`` before its final punctuation."""
    cited = []
    for sentence in split_sentences(text):
        body, punct = (sentence[:-1], sentence[-1]) if sentence[-1] in ".!?" else (sentence, ".")
        cited.append(f"{body.rstrip()} [{number}]{punct}")
    return " ".join(cited)


def kb_records(kb=None, distractors: int = 3, unanswerable_every: int = 10, seed: int = 0) -> list[dict]:
    """Grounded QA from every condition and drug section: the section as one passage among
    ``distractors - 1`` to ``distractors`` passages from other entries, shuffled deterministically; the answer is the
    section's sentences each citing that passage. Every ``unanswerable_every``-th record leaves
    the section out, and the answer says the context does not tell (0 turns this off)."""
    if kb is None:
        from kmed.data.kb import KBValidationError, load_kb, load_kb_or_fail

        try:
            kb = load_kb_or_fail()
        except KBValidationError:  # the KB is edited concurrently: use what validates now
            kb, _ = load_kb()
    from kmed.data.kb_schema import CONDITION_SECTIONS, DRUG_SECTIONS

    def sources(entry) -> str:
        return ", ".join(kb.sources[s].title if s in kb.sources else s for s in entry.source_ids())

    pool: list[tuple[str, str, str, str]] = []  # (entry id, title, text, source)
    items = []
    for kind, table, titles, questions in (
        ("condition", kb.conditions, CONDITION_SECTIONS, CONDITION_QUESTIONS),
        ("drug", kb.drugs, DRUG_SECTIONS, DRUG_QUESTIONS),
    ):
        for entry in table.values():
            for key, text in entry.sections.items():
                if not (text or "").strip() or key not in questions:
                    continue
                title = f"{entry.name} · {titles.get(key, key)}"
                pool.append((entry.id, title, text.strip(), sources(entry)))
                items.append((kind, entry, key, title, text.strip(), questions[key]))

    records = []
    for index, (kind, entry, key, title, text, template) in enumerate(items):
        record_id = f"kb:{entry.id}:{key}"
        rng = _seeded(str(seed), record_id)
        count = rng.randint(max(1, distractors - 1), distractors) if distractors > 0 else 0
        chosen = _distractors(pool, entry, count, rng)
        unanswerable = unanswerable_every > 0 and index % unanswerable_every == unanswerable_every - 1 and chosen
        passages = [p[1:] for p in chosen] + ([] if unanswerable else [(title, text, sources(entry))])
        rng.shuffle(passages)
        context = [{"number": i + 1, "title": t, "text": x, "source": s} for i, (t, x, s) in enumerate(passages)]
        if unanswerable:
            answer = f"{UNANSWERABLE} {_advice(kb, entry, kind)}"
        else:
            number = next(c["number"] for c in context if c["title"] == title)
            answer = cite_sentences(text, number)
        records.append({
            "id": record_id + (":unanswerable" if unanswerable else ""),
            "task": "grounded_qa",
            "question": _question(template, entry.name),
            "context": context,
            "answer": answer,
            "provenance": {"kind": "kb", "entry": entry.id, "section": key, "file": kb.origin.get(entry.id, ""),
                           "unanswerable": bool(unanswerable)},
        })
    return records


def _distractors(pool: list[tuple], entry, count: int, rng: random.Random) -> list[tuple]:
    """``count`` passages from other entries that never name this one, so they cannot answer it.
    Rejection sampling keeps this linear in the KB size."""
    def usable(p: tuple) -> bool:
        return p[0] != entry.id and entry.name not in p[2]

    chosen: dict[int, tuple] = {}
    for _ in range(50 * max(1, count)):
        if len(chosen) == count:
            return list(chosen.values())
        index = rng.randrange(len(pool))
        if index not in chosen and usable(pool[index]):
            chosen[index] = pool[index]
    others = [p for p in pool if usable(p)]  # a tiny or repetitive KB: fall back to the full filter
    return rng.sample(others, min(count, len(others)))


def _advice(kb, entry, kind: str) -> str:
    if kind == "drug":
        return "복용 전에 의사나 약사와 상의해 보세요."
    names = [kb.departments[d].name for d in entry.departments if d in kb.departments][:1]
    return f"{names[0]}에서 진료를 받아 보세요." if names else "가까운 병원에서 진료를 받아 보세요."


# ---- reading and checking records --------------------------------------------------------------


def validate_dialogue(record: dict) -> list[str]:
    """``{"id", "task": "dialogue", "messages": [{"role", "content"}, …]}`` ending with an assistant turn."""
    messages = record.get("messages")
    if not isinstance(messages, list) or not messages:
        return ["a dialogue needs a non-empty 'messages' list"]
    if any(not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant") or not str(m.get("content", "")).strip()
           for m in messages):
        return ["each message needs a role (system|user|assistant) and non-empty content"]
    if messages[-1]["role"] != "assistant":
        return ["a dialogue must end with an assistant message (the training target)"]
    return []


def validate_record(record: dict) -> list[str]:
    if record.get("task") == "dialogue":
        return ["missing 'id'"] if "id" not in record else validate_dialogue(record)
    problems = [f"missing '{k}'" for k in REQUIRED_KEYS if k not in record]
    if problems:
        return problems
    if record["task"] != "grounded_qa":
        problems.append(f"task is {record['task']!r}, expected 'grounded_qa'")
    if not str(record["question"]).strip() or not str(record["answer"]).strip():
        problems.append("empty question or answer")
    numbers = []
    for passage in record["context"] if isinstance(record["context"], list) else []:
        if not isinstance(passage, dict) or not isinstance(passage.get("number"), int) or "text" not in passage:
            problems.append("each context item needs an int 'number' and a 'text'")
            break
        numbers.append(passage["number"])
    if len(numbers) != len(set(numbers)):
        problems.append("context numbers repeat")
    stray = [n for n in cited_numbers(str(record["answer"])) if n not in numbers]
    if stray:
        problems.append(f"answer cites {stray}, which are not in the context")
    return problems


def _valid_record(record, line_no: int) -> dict:
    problems = validate_record(record) if isinstance(record, dict) else ["not a JSON object"]
    if problems:
        raise ValueError("; ".join(problems))
    return record


def read_records(path: str | Path) -> list[dict]:
    """Read a JSONL of grounded-QA records; every bad line is reported with its line number."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"학습 데이터 파일 '{path}'이(가) 없어요.", "--data에 JSONL 파일 경로를 주거나, 빼면 KB로 만든 데이터를 써요.")
    records, errors = read_jsonl_lines(path, _valid_record)
    if errors:
        raise ConfigError(f"학습 데이터에 잘못된 줄이 {len(errors)}개 있어요:\n{line_errors(errors)}",
                          "고친 뒤 다시 실행하세요 (형식: docs/llm.md).")
    if not records:
        raise ConfigError(f"'{path}'에 학습할 레코드가 없어요.")
    return records


def write_records(records: Iterable[dict], path: str | Path) -> int:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with open(path, "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    return count


def split_records(records: list[dict], eval_fraction: float, seed: int = 0) -> tuple[list[dict], list[dict]]:
    """Deterministic split by KB entry (or record id), so one entry's sections never straddle it."""
    if eval_fraction <= 0:
        return records, []
    train, held = [], []
    for record in records:
        group = (record.get("provenance") or {}).get("entry") or record["id"]
        bucket = int(hashlib.sha256(f"{seed}:{group}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
        (held if bucket < eval_fraction else train).append(record)
    if not train:  # tiny datasets: never hold out everything
        return records, []
    return train, held


# ---- tokenizing --------------------------------------------------------------------------------


@dataclass
class Example:
    input_ids: list[int]
    labels: list[int]
    record_id: str


def to_request(record: dict) -> GenerationRequest:
    context = [
        ContextPassage(number=c["number"], title=c.get("title", ""), text=c["text"], source=c.get("source", ""))
        for c in record["context"]
    ]
    return GenerationRequest(question=record["question"], context=context)


def tokenize_dialogue(record: dict, tokenizer, max_seq_len: int) -> Example | None:
    """Earlier turns as the prompt (labels ignored), the last assistant turn as the target."""
    *history, last = record["messages"]
    answer_ids = tokenizer(last["content"], add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    if getattr(tokenizer, "chat_template", None):
        prompt = tokenizer.apply_chat_template(history, tokenize=False, add_generation_prompt=True)
        prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    else:
        names = {"system": "지시", "user": "사용자", "assistant": "상담원"}
        prompt = "".join(f"{names[m['role']]}: {m['content']}\n" for m in history) + "상담원: "
        prompt_ids = tokenizer(prompt)["input_ids"]
    prompt_ids = prompt_ids[-max(0, max_seq_len - len(answer_ids)):]  # keep the most recent turns
    if not prompt_ids or len(prompt_ids) + len(answer_ids) > max_seq_len:
        return None
    return Example(prompt_ids + answer_ids, [IGNORE_INDEX] * len(prompt_ids) + answer_ids, record["id"])


def tokenize_record(record: dict, tokenizer, max_seq_len: int) -> Example | None:
    """Prompt (labels ignored) + answer + EOS (labels kept). None when the cited passages cannot fit."""
    if record.get("task") == "dialogue":
        return tokenize_dialogue(record, tokenizer, max_seq_len)
    answer_ids = tokenizer(record["answer"], add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    budget = max_seq_len - len(answer_ids)
    if budget <= 0:
        return None
    prompt = build_prompt(to_request(record), tokenizer, max_prompt_tokens=budget)
    if any(n not in prompt.numbers for n in cited_numbers(record["answer"])) or prompt.prompt_tokens > budget:
        return None
    prompt_ids = tokenizer(prompt.text, add_special_tokens=not prompt.chat_template)["input_ids"]
    return Example(prompt_ids + answer_ids, [IGNORE_INDEX] * len(prompt_ids) + answer_ids, record["id"])


def tokenize_records(records: Iterable[dict], tokenizer, max_seq_len: int) -> tuple[list[Example], list[str]]:
    examples, skipped = [], []
    for record in records:
        example = tokenize_record(record, tokenizer, max_seq_len)
        if example is None:
            skipped.append(record["id"])
        else:
            examples.append(example)
    return examples, skipped


def collate(examples: list[Example], pad_id: int) -> dict:
    """Right-pad a batch; padding is masked out of attention and loss."""
    import torch

    width = max(len(e.input_ids) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, example in enumerate(examples):
        n = len(example.input_ids)
        ids[row, :n] = torch.tensor(example.input_ids)
        labels[row, :n] = torch.tensor(example.labels)
        mask[row, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def batch_order(num_examples: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1) -> Iterator[list[int]]:
    """Endless micro-batches of example indices: a fresh seeded permutation each epoch, each rank
    taking its own stride. Deterministic, so a resumed run can skip exactly what it already saw."""
    epoch = 0
    while True:
        order = list(range(num_examples))
        random.Random(seed * 1_000_003 + epoch).shuffle(order)
        mine = order[rank::world_size] or order  # fewer examples than ranks: everyone sees them all
        for start in range(0, len(mine), batch_size):
            yield mine[start : start + batch_size]
        epoch += 1
