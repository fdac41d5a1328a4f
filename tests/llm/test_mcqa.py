"""KorMedMCQA scoring (kmed.llm.mcqa) on tiny models and made-up questions: the report's contract,
batched-vs-loop parity, rigged models that must score 1.0 and 0.0, and errors without tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from kmed.errors import ConfigError, KmedError, ModelLoadError
from kmed.llm.mcqa import (
    _encode_prompt,
    encode_options,
    letter_scores,
    letter_token_ids,
    lettered_prompt,
    load_model,
    option_logprobs,
    score_items,
)
from kmed.llm.mcqa_data import DEFAULT_DATA, LETTERS, McqaItem, load_items, stratified_counts, wilson
from kmed.llm.tiny import save_tiny_model

# Invented for these tests; nothing here comes from KorMedMCQA.
TEXTS = ["열이 나고 목이 아프면 인후염일 수 있어요.", "가슴이 답답하면 바로 응급실에 가세요.", "가가가 나나나 다다다 라라라 마마마",
         "아세트아미노펜은 해열제예요.", "정답은 무엇인가요? 보기 중에서 고르세요."]
QUESTIONS = ["38도 열과 인후통이 있는 성인에게 먼저 권할 것은?", "갑작스러운 가슴 통증이 20분 넘게 이어질 때 할 일은?",
             "해열제를 먹은 뒤 다시 먹기까지 보통 기다리는 시간은?", "손을 씻는 가장 알맞은 시간은?",
             "어린이가 열이 나며 처질 때 확인할 것은?", "기침이 3주 넘게 이어지면 받아 볼 검사는?"]
DISTRACTORS = ["나나나 나나", "다다다다", "라라", "마마마 마마마"]


def made_up_rows(n: int = 10) -> list[dict]:
    """Gold is always the 가 option, at letter i % 5; the 나 option is never gold."""
    rows = []
    for i in range(n):
        gold = i % 5
        options = DISTRACTORS[:gold] + ["가가가 가가"] + DISTRACTORS[gold:]
        rows.append({"id": f"t{i}", "subject": ["doctor", "nurse", "pharm"][i % 3], "question": QUESTIONS[i % len(QUESTIONS)],
                     **dict(zip(LETTERS, options, strict=True)), "answer": LETTERS[gold]})
    return rows


def write_jsonl(path, rows) -> None:
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mcqa-data")
    write_jsonl(folder / "questions.jsonl", made_up_rows())
    return folder


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    """(path, model, tokenizer) per arch, built once for the module."""
    built: dict[str, tuple] = {}

    def get(arch: str) -> tuple:
        if arch not in built:
            path = save_tiny_model(tmp_path_factory.mktemp("mcqa-model") / arch, arch=arch, texts=TEXTS)
            built[arch] = (path, *load_model(path))
        return built[arch]

    return get


@pytest.fixture(scope="module")
def tiny(tiny_models):
    """A tiny Gemma 3 (sliding window 16, so the longer prompts cross it)."""
    return tiny_models("gemma3_text")


def test_report_has_the_contract(tiny, data_dir):
    _, model, tokenizer = tiny
    items = load_items(data_dir)
    report = score_items(model, tokenizer, items)
    assert {"accuracy", "n", "correct", "per_subject", "chance", "ci95", "method", "sample"} <= set(report)
    assert report["n"] == 10 and report["chance"] == 0.2 and report["method"] == "option_loglik"
    assert sum(s["n"] for s in report["per_subject"].values()) == 10
    assert sum(s["correct"] for s in report["per_subject"].values()) == report["correct"]
    assert report["ci95"][0] <= report["accuracy"] <= report["ci95"][1]
    assert report["sample"]["kind"] == "all"


def reference_logprobs(model, tokenizer, items) -> list[list[float]]:
    """One option at a time, the whole sequence, no cache and no padding."""
    out = []
    with torch.no_grad():
        for item in items:
            prompt, conts = encode_options(tokenizer, item)
            row = []
            for cont in conts:
                logp = model(input_ids=torch.tensor([prompt + cont])).logits[0].float().log_softmax(-1)
                row.append(sum(logp[len(prompt) - 1 + j, token].item() for j, token in enumerate(cont)))
            out.append(row)
    return out


@pytest.mark.parametrize("arch", ["gemma3_text", "llama", "gpt_neox"])
def test_batched_option_loglik_equals_a_plain_loop(arch, tiny_models, tmp_path):
    _, model, tokenizer = tiny_models(arch)
    items = load_items_from_rows(tmp_path, made_up_rows(7), long_every=2)
    got = option_logprobs(model, tokenizer, items, batch_size=3)
    want = reference_logprobs(model, tokenizer, items)
    assert max(abs(a - b) for g, w in zip(got, want, strict=True) for a, b in zip(g, w, strict=True)) < 1e-4


def test_batched_next_letter_equals_a_plain_loop(tiny, tmp_path):
    _, model, tokenizer = tiny
    items = load_items_from_rows(tmp_path, made_up_rows(7), long_every=2)
    got = letter_scores(model, tokenizer, items, batch_size=3)
    letters = letter_token_ids(tokenizer, 5)
    with torch.no_grad():
        for item, row in zip(items, got, strict=True):
            logp = model(input_ids=torch.tensor([_encode_prompt(tokenizer, lettered_prompt(item))])).logits[0, -1].log_softmax(-1)
            assert row == pytest.approx([torch.logsumexp(logp[ids], -1).item() for ids in letters], abs=1e-4)


def load_items_from_rows(folder, rows, long_every: int = 0):
    """Some questions repeated a few times, so prompts differ in length (padding) and cross the window."""
    if long_every:
        rows = [{**r, "question": r["question"] * (1 + 3 * (i % long_every))} for i, r in enumerate(rows)]
    write_jsonl(folder / "rows.jsonl", rows)
    return load_items(folder / "rows.jsonl")


class BoostHead(torch.nn.Module):
    """An output layer that adds +30 to some tokens' logits everywhere: a model that 'knows' one option."""

    def __init__(self, head, token_ids):
        super().__init__()
        self.head, self.bonus = head, torch.zeros(head.out_features)
        self.bonus[sorted(token_ids)] = 30.0

    def forward(self, hidden):
        return self.head(hidden) + self.bonus


class LetterRig(torch.nn.Module):
    """Reads the lettered prompt and boosts the letter of the option containing ``marker``."""

    def __init__(self, inner, tokenizer, marker):
        super().__init__()
        self.inner, self.tokenizer, self.marker = inner, tokenizer, marker

    def forward(self, input_ids, attention_mask, **kwargs):
        out = self.inner(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
        for row, ids in enumerate(input_ids):
            text = self.tokenizer.decode(ids[attention_mask[row].bool()])
            letter = next(line[0] for line in text.splitlines() if line[1:3] == ". " and self.marker in line)
            out.logits[row, -1, self.tokenizer(letter, add_special_tokens=False)["input_ids"][0]] += 30.0
        return out


@pytest.mark.parametrize("marker, expected", [("가", 1.0), ("나", 0.0)])
def test_a_model_rigged_toward_one_option_scores_accordingly(marker, expected, tiny_models, data_dir):
    _, model, tokenizer = tiny_models("llama")
    items = load_items(data_dir)
    ids = lambda text: set(tokenizer(" " + text, add_special_tokens=False)["input_ids"])  # noqa: E731
    others = set().union(*(ids(d) for d in [*DISTRACTORS, "가가가 가가"] if marker not in d))
    head = model.lm_head
    model.lm_head = BoostHead(head, ids(f"{marker * 3} {marker * 2}") - others)
    try:
        assert score_items(model, tokenizer, items)["accuracy"] == expected
    finally:
        model.lm_head = head
    rigged = LetterRig(model, tokenizer, marker)
    assert score_items(rigged, tokenizer, items, method="next_letter")["accuracy"] == expected


def test_sampling_is_stratified_and_deterministic(tmp_path):
    rows = made_up_rows(60)
    write_jsonl(tmp_path / "q.jsonl", rows)
    a, b = load_items(tmp_path, limit=12, seed=1), load_items(tmp_path, limit=12, seed=1)
    assert [i.id for i in a] == [i.id for i in b] and len(a) == 12
    assert a.sample["kind"] == "stratified" and a.sample["per_subject"] == {"doctor": 4, "nurse": 4, "pharm": 4}
    assert [i.id for i in load_items(tmp_path, limit=12, seed=2)] != [i.id for i in a]
    assert stratified_counts({"doctor": 1130, "pharm": 367, "nurse": 340, "dentist": 167}, 200) == \
        {"doctor": 113, "pharm": 36, "nurse": 34, "dentist": 17}


def test_wilson_interval():
    assert wilson(0, 10) == [0.0, pytest.approx(0.2775, abs=1e-4)]
    lo, hi = wilson(35, 200)
    assert lo < 0.175 < hi and hi - lo == pytest.approx(0.105, abs=0.005)


def test_bad_inputs_are_kmed_errors(tmp_path, tiny, data_dir):
    _, model, tokenizer = tiny
    with pytest.raises(ConfigError, match="없어요"):
        load_items(tmp_path / "missing")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "q.jsonl").write_text(json.dumps(made_up_rows(1)[0]) + "\n{not json\n" +
                                              json.dumps({"question": "질문", "A": "가", "B": "나", "answer": "E"}) + "\n")
    with pytest.raises(ConfigError, match=r"2개 있어요(.|\n)*q.jsonl:2: JSON(.|\n)*q.jsonl:3: answer"):
        load_items(tmp_path / "bad")
    with pytest.raises(ConfigError, match="채점 방식"):
        score_items(model, tokenizer, load_items(data_dir), method="majority")
    with pytest.raises(ModelLoadError, match="모델 폴더가 아니에요"):
        load_model(data_dir)
    with pytest.raises(ModelLoadError, match="없어요"):
        load_model(tmp_path / "no-model")
    (tmp_path / "compressed").mkdir()
    (tmp_path / "compressed" / "model").symlink_to(tiny[0])  # a `kmed compress --out` folder keeps its model in model/
    assert load_model(tmp_path / "compressed")[1].vocab_size == tokenizer.vocab_size
    assert issubclass(ConfigError, KmedError) and issubclass(ModelLoadError, KmedError)


def test_cli_prints_json_and_a_korean_table(tiny, data_dir):
    from typer.testing import CliRunner

    from kmed.cli.main import app

    args = ["eval", "mcqa", "--model", str(tiny[0]), "--data", str(data_dir)]
    done = CliRunner().invoke(app, [*args, "--json", "--method", "next_letter", "--threads", "1"])
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)
    assert report["n"] == 10 and report["method"] == "next_letter" and report["model"] == str(tiny[0])
    table = CliRunner().invoke(app, [*args, "--limit", "6"])
    assert table.exit_code == 0 and "찍기 수준 20.0%" in table.stdout and "95% 신뢰구간" in table.stdout


def test_cli_error_has_no_traceback(tiny, tmp_path):
    (tmp_path / "bad.jsonl").write_text("{oops\n", encoding="utf-8")
    cli = [sys.executable, "-m", "kmed.cli.main", "eval", "mcqa", "--model", str(tiny[0]), "--data", str(tmp_path / "bad.jsonl")]
    failed = subprocess.run(cli, capture_output=True, text=True, timeout=120)
    assert failed.returncode != 0 and "Traceback" not in failed.stderr and "bad.jsonl:1" in failed.stderr


@pytest.mark.skipif(not DEFAULT_DATA.is_dir(), reason="../shared/benchmarks/kormedmcqa_train_subset is not here")
def test_the_real_subset_loads_and_samples():
    everything = load_items()
    assert len(everything) == 2004 and all(isinstance(i, McqaItem) and len(i.options) == 5 for i in everything)
    sample = load_items(limit=200)
    assert len(sample) == 200 and sample.sample["per_subject"] == {"dentist": 17, "doctor": 113, "nurse": 34, "pharm": 36}
    assert [i.id for i in sample] == [i.id for i in load_items(limit=200)]
