"""``--report-to``: each tracker writes what its own reader reads back; a missing package says how to fix it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from kmed.errors import ConfigError, KmedError
from kmed.eval.tracking import KINDS, NoTracker, flatten, make_tracker

METRICS = {"eval/pass_rate": 0.75, "eval/turn_latency_ms": {"p50": 12.5, "p95": None}, "eval/set": "dev"}


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")


def _scalars(log_dir: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_flatten_keeps_numbers_only():
    assert flatten(METRICS) == {"eval/pass_rate": 0.75, "eval/turn_latency_ms/p50": 12.5}
    assert flatten({"ok": True, "n": 3}) == {"ok": 1.0, "n": 3.0}


def test_none_is_a_no_op(tmp_path):
    tracker = make_tracker("none", tmp_path / "run", "x", {"a": 1})
    assert isinstance(tracker, NoTracker)
    tracker.log_config({"a": 1})
    tracker.log_metrics(METRICS, step=1)
    tracker.finish()
    assert not (tmp_path / "run").exists()
    assert isinstance(make_tracker(None, tmp_path, "x"), NoTracker)


def test_unknown_kind_names_the_choices(tmp_path):
    with pytest.raises(ConfigError) as err:
        make_tracker("comet", tmp_path, "x")
    assert all(kind in str(err.value) for kind in KINDS)


def test_tensorboard_event_files_read_back(tmp_path):
    tracker = make_tracker("tensorboard", tmp_path, "run-a", {"model": None, "set": "dev"})
    tracker.log_metrics({"train/loss": 2.5}, step=1)
    tracker.log_metrics({"train/loss": 1.25}, step=2)
    tracker.log_metrics(METRICS)
    tracker.finish()
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    scalars = _scalars(tmp_path / "tensorboard")
    assert scalars["train/loss"] == [(1, 2.5), (2, 1.25)]
    assert scalars["eval/pass_rate"] == [(0, 0.75)]
    assert scalars["eval/turn_latency_ms/p50"] == [(0, 12.5)]
    assert "eval/set" not in scalars and "eval/turn_latency_ms/p95" not in scalars


def test_wandb_offline_run_holds_the_history(tmp_path):
    pytest.importorskip("wandb")
    tracker = make_tracker("wandb", tmp_path, "run-a", {"set": "dev"})
    tracker.log_metrics({"train/loss": 2.5}, step=1)
    tracker.log_metrics({"train/loss": 1.25}, step=2)
    tracker.finish()
    runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    (log,) = runs[0].glob("run-*.wandb")  # the transaction log that `wandb sync` uploads
    # wandb 0.2x+ reads this log only in its Go core; its records carry each key and JSON value as text.
    records = log.read_bytes()
    assert records.startswith(b":W&B")
    assert b"train/loss" in records and b"2.5" in records and b"1.25" in records and b"dev" in records


def test_mlflow_store_reads_back(tmp_path):
    mlflow = pytest.importorskip("mlflow")
    tracker = make_tracker("mlflow", tmp_path, "run-a", {"set": "dev", "lora": {"r": 4}})
    tracker.log_metrics({"train/loss": 2.5}, step=1)
    tracker.log_metrics({"train/loss": 1.25}, step=2)
    tracker.finish()
    client = mlflow.tracking.MlflowClient(tracking_uri=f"sqlite:///{(tmp_path / 'mlruns' / 'mlflow.db').resolve()}")
    run = client.get_run(tracker.run_id)
    assert run.info.status == "FINISHED" and run.data.params["lora.r"] == "4"
    assert [(m.step, m.value) for m in client.get_metric_history(tracker.run_id, "train/loss")] == [(1, 2.5), (2, 1.25)]


@pytest.mark.parametrize("kind, module, package", [
    ("tensorboard", "torch.utils.tensorboard", "tensorboard"),
    ("wandb", "wandb", "wandb"),
    ("mlflow", "mlflow.tracking", "mlflow"),
])
def test_missing_package_says_which_pip_install(tmp_path, monkeypatch, kind, module, package):
    monkeypatch.setitem(sys.modules, module, None)  # `import module` now raises ImportError
    with pytest.raises(KmedError) as err:
        make_tracker(kind, tmp_path, "x")
    assert f"pip install {package}" in str(err.value)


# ---- the CLI -----------------------------------------------------------------------------------


def test_report_to_without_a_run_folder_names_the_fix():
    """The tracker writes into the run record; with --no-record and no --out there is nowhere to write."""
    from typer.testing import CliRunner

    from kmed.cli.main import app

    result = CliRunner().invoke(app, ["--no-record", "eval", "grounded", "--report-to", "tensorboard"])
    assert isinstance(result.exception, KmedError)
    assert "--out" in str(result.exception) and "--no-record" in str(result.exception)


def test_eval_grounded_reports_its_summary(tmp_path, monkeypatch):
    """The command's plumbing, with the assistant and the evaluation stubbed: the summary lands in --out."""
    from typer.testing import CliRunner

    import kmed
    import kmed.eval.grounded_eval as grounded
    import kmed.llm.factory as factory
    from kmed.cli.main import app

    report = {"cases": 2, "pass_rate": 0.5, "emergency_recall": 1.0, "over_triage_rate": 0.0, "quoted_fragments": 0,
              "refusal_precision": None, "refusal_recall": 1.0, "turn_latency_ms": {"p50": 3.0, "p95": 4.0},
              "per_category": {}, "failures": []}
    monkeypatch.setattr(grounded, "load_cases", lambda path: [])
    monkeypatch.setattr(grounded, "evaluate", lambda assistant, cases, rows: dict(report))
    monkeypatch.setattr(factory, "load_generator", lambda model, adapter=None: None)
    monkeypatch.setattr(kmed.Assistant, "load", classmethod(lambda cls, generator=None: type("A", (), {})()))
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["eval", "grounded", "--out", str(out), "--report-to", "tensorboard", "--json"])
    assert result.exit_code == 0, result.output
    scalars = _scalars(out / "tensorboard")
    assert scalars["eval/pass_rate"] == [(0, 0.5)] and scalars["eval/turn_latency_ms/p95"] == [(0, 4.0)]
    assert "eval/refusal_precision" not in scalars  # None: no refusals, nothing to plot
    assert (out / "config.json").is_file() and (out / "cases.jsonl").is_file() and (out / "metrics.json").is_file()


def test_train_lora_reports_loss_to_tensorboard(tmp_path):
    """Two real training steps on the tiny model, as in tests/test_lora.py."""
    import yaml
    from typer.testing import CliRunner

    from kmed.cli.main import app
    from kmed.llm.tiny import save_tiny_model
    from kmed.llm.training import data as D
    from kmed.llm.training.lora import DEFAULT_CONFIG

    texts = ["가슴이 타는 듯이 쓰려요.", "신물이 올라와요.", "열이 나고 목이 아파요.", "소화기내과에 가 보세요."] * 4
    base = save_tiny_model(tmp_path / "llama", arch="llama", texts=texts)
    raw = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    raw.update(batch_size=2, grad_accum=1, max_seq_len=512, eval_fraction=0.0, save_every=2, log_every=1,
               warmup_steps=1, lr=5e-3, lora_r=4, lora_alpha=8, progress=False)
    config = tmp_path / "train.yaml"
    config.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    qa = tmp_path / "qa.jsonl"
    context = [{"number": 1, "title": "역류성 식도염 · 증상", "text": "가슴이 타는 듯이 쓰려요.", "source": "대한소화기학회"}]
    D.write_records([{"id": f"t{i}", "task": "grounded_qa", "question": "역류성 식도염의 증상은 뭐예요?", "context": context,
                      "answer": "가슴이 타는 듯이 쓰려요 [1].", "provenance": {"kind": "test"}} for i in range(6)], qa)
    run_dir = tmp_path / "run"
    args = ["train", "lora", "--base", str(base), "--out", str(tmp_path / "adapter"), "--data", str(qa),
            "--max-steps", "2", "--config", str(config), "--json", "--report-to", "tensorboard", "--run-dir", str(run_dir)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    manifest = json.loads(result.stdout[result.stdout.index("{"):])
    scalars = _scalars(run_dir / "tensorboard")
    assert [step for step, _ in scalars["train/loss"]] == [1, 2]
    assert scalars["train/loss"][-1][1] == pytest.approx(manifest["training"]["last_loss"], rel=1e-5)
    for key in ("train/lr", "train/tokens_per_s", "train/peak_memory_mb"):
        assert len(scalars[key]) == 2 and all(value > 0 for _, value in scalars[key])
    config = json.loads((run_dir / "config.json").read_text())  # --run-dir is the run record too
    assert config["command"] == "train lora" and config["status"] == "complete"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["training"]["last_loss"] == manifest["training"]["last_loss"]
    assert "loss.png" in (run_dir / "report.md").read_text() and (run_dir / "loss.png").stat().st_size > 5000
