"""LoRA SFT on tiny GPT-NeoX and LLaMA: data, masking, adapter parity, loss falls, resume, CLI."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from kmed.errors import ConfigError, ModelLoadError
from kmed.llm.training import data as D
from kmed.llm.training.lora import (
    DEFAULT_CONFIG,
    TARGET_MODULES,
    TrainLoraConfig,
    load_train_config,
    train_lora,
)

ROOT = Path(__file__).resolve().parents[2]
TEXTS = ["가슴이 타는 듯이 쓰려요.", "신물이 올라와요.", "열이 나고 목이 아파요.", "소화기내과에 가 보세요."] * 4


def _record(i: int, answer_number: int = 2) -> dict:
    context = [
        {"number": 1, "title": "감기 · 증상", "text": "콧물과 기침이 나요.", "source": "국가건강정보포털"},
        {"number": 2, "title": "역류성 식도염 · 증상", "text": "가슴이 타는 듯이 쓰려요. 신물이 올라와요.", "source": "대한소화기학회"},
    ]
    return {
        "id": f"t{i}", "task": "grounded_qa", "question": "역류성 식도염의 증상은 뭐예요?", "context": context,
        "answer": f"가슴이 타는 듯이 쓰려요 [{answer_number}]. 신물이 올라와요 [{answer_number}].",
        "provenance": {"kind": "test"},
    }


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from kmed.llm.tiny import save_tiny_model

    root = tmp_path_factory.mktemp("lora")
    return {arch: save_tiny_model(root / arch, arch=arch, texts=TEXTS) for arch in ("gpt_neox", "llama", "gemma3_text")}


@pytest.fixture()
def small_config(tmp_path) -> Path:
    """The shipped config with only the size knobs turned down, so tests run the real defaults."""
    raw = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    raw.update(batch_size=2, grad_accum=1, max_seq_len=512, eval_fraction=0.0, save_every=2, log_every=1,
               warmup_steps=1, lr=5e-3, lora_r=4, lora_alpha=8, progress=False)
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture()
def qa_jsonl(tmp_path) -> Path:
    path = tmp_path / "qa.jsonl"
    D.write_records([_record(i) for i in range(6)], path)
    return path


# ---- config and data ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted((ROOT / "configs").glob("train_lora*.yaml")), ids=lambda p: p.name)
def test_yaml_config_matches_the_recipe_signature(path):
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# kmed train lora --base")
    raw = yaml.safe_load(text)
    fields = {f.name for f in dataclasses.fields(TrainLoraConfig)}
    assert set(raw) <= fields, set(raw) - fields
    for line in text.splitlines():
        if line and not line.startswith("#"):
            assert "#" in line, f"every value needs a one-line trade-off comment: {line}"
    assert f"--config configs/{path.name}" in text.splitlines()[0] or path == DEFAULT_CONFIG
    config = load_train_config(path, base="b", out="o")
    assert config.max_steps == raw["max_steps"] and config.base == "b"
    with pytest.raises(ConfigError):
        load_train_config(path, base="b", out="o", batch_size=0)
    with pytest.raises(ConfigError):
        load_train_config(path, out="o")


def test_kb_records_are_grounded_and_deterministic():
    from kmed.data.kb import load_kb

    kb, _ = load_kb()  # whatever validates now: the KB grows while people work
    records = D.kb_records(kb, seed=1)
    assert len(records) >= 10 and records == D.kb_records(kb, seed=1)
    assert records != D.kb_records(kb, seed=2)
    answerable = [r for r in records if not r["provenance"]["unanswerable"]]
    unanswerable = [r for r in records if r["provenance"]["unanswerable"]]
    assert unanswerable and len(answerable) > 5 * len(unanswerable)
    numbers_seen = set()
    for record in records:
        assert D.validate_record(record) == []
        assert 2 <= len(record["context"]) <= 4
        assert [c["number"] for c in record["context"]] == list(range(1, len(record["context"]) + 1))
    for record in answerable:
        cited = D.cited_numbers(record["answer"])
        assert len(cited) == 1
        target = next(c for c in record["context"] if c["number"] == cited[0])
        assert target["title"].split(" · ")[0] in record["question"]
        sentences = [s for s in re.split(r"(?<=[.!?])\s+", record["answer"]) if s]
        assert all(re.search(rf"\[{cited[0]}\][.!?]$", s) for s in sentences)
        numbers_seen.add(cited[0])
    assert len(numbers_seen) > 1, "the right passage must not always sit at the same number"
    for record in unanswerable:
        assert record["answer"].startswith(D.UNANSWERABLE) and not D.cited_numbers(record["answer"])


def test_question_particles_agree():
    assert D._question("{은} 어떤 병이에요?", "위염") == "위염은 어떤 병이에요?"
    assert D._question("{은} 어떤 병이에요?", "감기") == "감기는 어떤 병이에요?"
    assert D._question("{이면} 언제 병원에 가야 해요?", "감기") == "감기면 언제 병원에 가야 해요?"
    assert D._question("{을} 먹을 때 주의할 점은 뭐예요?", "아스피린") == "아스피린을 먹을 때 주의할 점은 뭐예요?"


def test_read_records_reports_every_bad_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    good, stray = _record(0), _record(1, answer_number=7)
    path.write_text("\n".join([json.dumps(good, ensure_ascii=False), "{not json", json.dumps(stray, ensure_ascii=False)]))
    with pytest.raises(ConfigError) as info:
        D.read_records(path)
    assert "bad.jsonl:2" in info.value.message and "bad.jsonl:3" in info.value.message and "[7]" in info.value.message
    with pytest.raises(ConfigError):
        D.read_records(tmp_path / "missing.jsonl")


def test_labels_cover_only_the_answer_and_the_prompt_matches_inference(tiny):
    from transformers import AutoTokenizer

    from kmed.llm.prompts import build_prompt

    tok = AutoTokenizer.from_pretrained(tiny["gpt_neox"])
    record = _record(0)
    example = D.tokenize_record(record, tok, max_seq_len=2048)
    answer_positions = [i for i, label in enumerate(example.labels) if label != D.IGNORE_INDEX]
    start = answer_positions[0]
    assert answer_positions == list(range(start, len(example.input_ids)))
    assert example.input_ids[-1] == tok.eos_token_id
    assert tok.decode(example.input_ids[start:-1]) == record["answer"]
    assert tok.decode(example.input_ids[:start]) == build_prompt(D.to_request(record), tok).text
    assert D.tokenize_record(record, tok, max_seq_len=start - 5) is None  # cited passage would not fit
    batch = D.collate([example, D.tokenize_record(_record(1), tok, 2048)], tok.pad_token_id)
    assert batch["input_ids"].shape == batch["labels"].shape == batch["attention_mask"].shape


def test_batch_order_is_deterministic_and_sharded():
    import itertools

    first = list(itertools.islice(D.batch_order(10, 3, seed=5), 8))
    assert first == list(itertools.islice(D.batch_order(10, 3, seed=5), 8))
    epoch = [i for batch in first[:4] for i in batch]
    assert sorted(epoch) == list(range(10))
    rank0 = [i for b in itertools.islice(D.batch_order(10, 5, 5, rank=0, world_size=2), 1) for i in b]
    rank1 = [i for b in itertools.islice(D.batch_order(10, 5, 5, rank=1, world_size=2), 1) for i in b]
    assert sorted(rank0 + rank1) == list(range(10))


# ---- adapter parity ----------------------------------------------------------------------------


@pytest.mark.parametrize("arch", ["gpt_neox", "llama", "gemma3_text"])
def test_adapter_reloads_exactly_and_merges_within_1e_5(tiny, tmp_path, arch):
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny[arch])
    ids = torch.randint(3, base.config.vocab_size, (2, 17), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        base_logits = base(ids).logits
    model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=TARGET_MODULES[arch], task_type="CAUSAL_LM"))
    with torch.no_grad():  # LoRA B starts at zero; give it weights so the adapter matters
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.05, generator=torch.Generator().manual_seed(hash(name) % 2**31))
        adapter_logits = model(ids).logits
    assert not torch.allclose(adapter_logits, base_logits, atol=1e-3)
    model.save_pretrained(tmp_path / "adapter")
    saved = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert set(saved["target_modules"]) == set(TARGET_MODULES[arch])

    reloaded = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny[arch]), tmp_path / "adapter").eval()
    with torch.no_grad():
        assert torch.equal(reloaded(ids).logits, adapter_logits)
        merged = reloaded.merge_and_unload()
        assert not any("lora" in n for n, _ in merged.named_modules())
        assert torch.allclose(merged(ids).logits, adapter_logits, atol=1e-5)


# ---- training ----------------------------------------------------------------------------------


@pytest.mark.parametrize("arch", ["gpt_neox", "llama", "gemma3_text"])
def test_training_steps_lower_the_loss(tiny, tmp_path, small_config, qa_jsonl, arch):
    config = load_train_config(small_config, base=str(tiny[arch]), out=str(tmp_path / "out"), data=str(qa_jsonl),
                               max_steps=12, lora_dropout=0.0, save_every=100)
    manifest = train_lora(config)
    losses = json.loads((tmp_path / "out" / "train_log.jsonl").read_text().splitlines()[-1])
    assert losses["step"] == 12
    first, last = manifest["training"]["first_loss"], manifest["training"]["last_loss"]
    assert last < first - 0.3, (first, last)
    out = tmp_path / "out"
    assert (out / "adapter_model.safetensors").is_file() and (out / "tokenizer.json").is_file()
    made = json.loads((out / "kmed_adapter.json").read_text())
    assert made["base_shape"]["arch"] == arch and made["data"]["source"] == str(qa_jsonl)
    assert made["lora"]["target_modules"] == TARGET_MODULES[arch]
    assert not Path(f"{out}.partial").exists()


def test_resume_after_interruption_matches_an_uninterrupted_run(tiny, tmp_path, small_config, qa_jsonl, monkeypatch):
    from safetensors.torch import load_file

    import kmed.llm.training.lora as recipe

    def config(out):
        return load_train_config(small_config, base=str(tiny["gpt_neox"]), out=str(out), data=str(qa_jsonl), max_steps=4)

    train_lora(config(tmp_path / "straight"))

    real_save = recipe.save_checkpoint

    def save_then_crash(work, model, optimizer, scheduler, state, keep):
        path = real_save(work, model, optimizer, scheduler, state, keep)
        if state["step"] == 2:
            raise KeyboardInterrupt  # the power goes out right after the step-2 checkpoint
        return path

    monkeypatch.setattr(recipe, "save_checkpoint", save_then_crash)
    with pytest.raises(KeyboardInterrupt):
        train_lora(config(tmp_path / "resumed"))
    assert not (tmp_path / "resumed").exists(), "an interrupted run must not leave a finished-looking folder"
    assert (tmp_path / "resumed.partial" / "checkpoints" / "step-00000002" / "trainer_state.json").is_file()
    monkeypatch.setattr(recipe, "save_checkpoint", real_save)

    with pytest.raises(ConfigError, match="lora_r"):
        train_lora(dataclasses.replace(config(tmp_path / "resumed"), resume=True, lora_r=8))
    manifest = train_lora(dataclasses.replace(config(tmp_path / "resumed"), resume=True))
    assert manifest["training"]["resumed_from"] == "step-00000002"
    a = load_file(tmp_path / "straight" / "adapter_model.safetensors")
    b = load_file(tmp_path / "resumed" / "adapter_model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=1e-6, rtol=1e-5)


def test_cli_trains_two_steps_and_the_adapter_generates(tiny, tmp_path, small_config, qa_jsonl):
    from typer.testing import CliRunner

    from kmed.cli.main import app
    from kmed.llm.base import ContextPassage, GenerationRequest
    from kmed.llm.factory import load_generator

    out = tmp_path / "adapter"
    args = ["train", "lora", "--base", str(tiny["llama"]), "--out", str(out), "--data", str(qa_jsonl),
            "--max-steps", "2", "--config", str(small_config), "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    manifest = json.loads(result.stdout[result.stdout.index("{"):])
    assert manifest["training"]["steps"] == 2 and (out / "kmed_adapter.json").is_file()
    again = CliRunner().invoke(app, args)
    assert again.exit_code != 0 and isinstance(again.exception, ConfigError)  # --out exists
    gen = load_generator(str(tiny["llama"]), adapter=str(out))
    reply = gen.generate(GenerationRequest("질문", [ContextPassage(1, "제목", "본문이에요.")], max_new_tokens=3))
    assert reply.new_tokens <= 3 and reply.metadata["adapter"] == str(out)
    bad = CliRunner().invoke(app, ["train", "lora", "--base", str(tmp_path / "nope"), "--out", str(tmp_path / "x"),
                                   "--config", str(small_config), "--data", str(qa_jsonl)])
    assert isinstance(bad.exception, ModelLoadError)


@pytest.mark.slow
def test_cli_subprocess_two_steps(tiny, tmp_path, small_config):
    out = tmp_path / "adapter"
    cmd = [sys.executable, "-m", "kmed.cli.main", "train", "lora", "--base", str(tiny["gpt_neox"]), "--out", str(out),
           "--max-steps", "2", "--config", str(small_config)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "완료" in done.stdout and (out / "kmed_adapter.json").is_file()


@pytest.mark.slow
def test_torchrun_two_processes_ddp(tiny, tmp_path, small_config, qa_jsonl):
    if shutil.which("torchrun") is None and not (Path(sys.executable).parent / "torchrun").exists():
        pytest.skip("torchrun not found")
    torchrun = shutil.which("torchrun") or str(Path(sys.executable).parent / "torchrun")
    out = tmp_path / "ddp"
    cmd = [torchrun, "--standalone", "--nproc_per_node", "2", "-m", "kmed.cli.main", "train", "lora",
           "--base", str(tiny["gpt_neox"]), "--out", str(out), "--data", str(qa_jsonl), "--max-steps", "2",
           "--config", str(small_config)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=ROOT, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    made = json.loads((out / "kmed_adapter.json").read_text())
    assert made["training"]["world_size"] == 2 and made["training"]["steps"] == 2


def test_dialogue_records_from_the_ai_hub_mix_train_on_the_last_assistant_turn(tiny, tmp_path):
    """The data pipeline's base-validation split writes task 'dialogue'; the trainer accepts it."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny["llama"])
    record = {"id": "d1", "task": "dialogue", "messages": [
        {"role": "user", "content": "머리가 아파요"}, {"role": "assistant", "content": "언제부터 아팠나요?"},
        {"role": "user", "content": "어제부터요"}, {"role": "assistant", "content": "쉬면서 지켜보세요."}]}
    assert D.validate_record(record) == []
    assert D.validate_record({**record, "messages": record["messages"][:-1]})  # must end with the assistant
    example = D.tokenize_record(record, tok, max_seq_len=512)
    target = [t for t, label in zip(example.input_ids, example.labels, strict=True) if label != D.IGNORE_INDEX]
    assert tok.decode(target[:-1]) == "쉬면서 지켜보세요." and target[-1] == tok.eos_token_id
    path = tmp_path / "mix.jsonl"
    path.write_text(json.dumps(record, ensure_ascii=False) + "\n", encoding="utf-8")
    assert D.read_records(path)[0]["task"] == "dialogue"


def test_a_recipe_that_is_not_yaml_is_a_clear_error(tmp_path):
    from kmed.errors import ConfigError
    from kmed.llm.training.lora_config import load_train_config

    bad = tmp_path / "recipe.yaml"
    bad.write_text("max_steps: [1,\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="YAML"):
        load_train_config(bad)
