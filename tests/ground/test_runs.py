"""Run records (kmed/runs.py): the layout and keys of a record, one per command family, the trackers
inside it, and ``kmed report`` over several (docs/evaluation.md, "Run records")."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kmed import runs
from kmed.cli.main import app
from kmed.errors import KmedError

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def runs_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("KMED_RUNS_DIR", str(tmp_path / "runs"))
    runs.configure()
    yield tmp_path / "runs"
    runs.configure()  # --runs-dir / --no-record of the last command stay set until the next one


def _invoke(*args: str):
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def _only(folder: Path, pattern: str) -> Path:
    (found,) = folder.glob(pattern)
    return found


def _scalars(log_dir: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def _check_layout(folder: Path, command: str) -> tuple[dict, dict]:
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    metrics = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
    assert config["schema"] == runs.SCHEMA and config["command"] == command and config["status"] == "complete"
    assert re.fullmatch(r"[0-9a-f]{40}", config["git"]["commit"]) and isinstance(config["git"]["dirty"], bool)
    assert config["versions"]["python"] and config["versions"]["kmed"] and config["versions"]["numpy"]
    assert config["machine"]["cpu_count"] and config["machine"]["platform"] and len(config["machine"]["loadavg"]) == 3
    assert config["started_at"] <= config["finished_at"] and config["seconds"] >= 0
    report = (folder / "report.md").read_text(encoding="utf-8")
    assert report.startswith(f"# {command}: ") and "| run | UTC | commit | machine |" in report
    for image in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report):
        assert (folder / image).stat().st_size > 5000, image
    return config, metrics


def test_a_record_has_its_files_and_keys(runs_dir):
    record = runs.open_run("eval demo", {"path": Path("/x"), "n": 3, "flag": True}, label="a b/c")
    assert re.fullmatch(r"\d{8}-\d{6}-eval-demo-a-b-c", record.path.name) and record.path.parent == runs_dir
    with runs.active(record):
        assert runs.current() is record
        runs.current().metrics({"pass_rate": 0.5})
        runs.current().cases([{"id": "x", "passed": True}, {"id": "y", "passed": False}])
    assert isinstance(runs.current(), runs.NoRecord)
    config = json.loads((record.path / "config.json").read_text())
    assert config["inputs"] == {"path": "/x", "n": 3, "flag": True} and config["status"] == "complete"
    assert json.loads((record.path / "metrics.json").read_text()) == {"pass_rate": 0.5}
    assert [json.loads(line)["id"] for line in (record.path / "cases.jsonl").read_text().splitlines()] == ["x", "y"]
    assert runs.resolve(record.path.name) == record.path and runs.read(record.path.name)["metrics"]["pass_rate"] == 0.5
    assert not list(record.path.glob(".*tmp*"))


def test_a_run_stopped_by_bad_input_leaves_nothing_and_a_later_failure_is_kept(runs_dir):
    record = runs.open_run("eval demo", {})
    with pytest.raises(KmedError), runs.active(record):
        raise KmedError("잘못된 입력", "고치세요")
    assert not record.path.exists()
    record = runs.open_run("eval demo", {})
    with pytest.raises(RuntimeError), runs.active(record):
        record.metrics({"done": 1})
        raise RuntimeError("boom")
    config = json.loads((record.path / "config.json").read_text())
    assert config["status"] == "failed" and "boom" in config["error"]
    with pytest.raises(KmedError, match="찾지 못했어요"):
        runs.resolve("no-such-run")


def test_no_record_and_runs_dir_options(tmp_path, runs_dir, monkeypatch):
    import kmed.eval.bench as bench

    monkeypatch.setattr(bench, "bench_retrieval", lambda queries, sizes, rebuild=True: {"load_seconds": 1.5,
                        "query_hybrid": {"p50_ms": 2.0, "p95_ms": 4.0, "n": len(queries)}})
    _invoke("--no-record", "bench", "retrieval", "--scales", "", "--json")
    assert not runs_dir.exists()
    _invoke("--runs-dir", str(tmp_path / "elsewhere"), "bench", "retrieval", "--scales", "", "--json")
    config, metrics = _check_layout(_only(tmp_path / "elsewhere", "*-bench-retrieval"), "bench retrieval")
    assert metrics["query_hybrid"]["p50_ms"] == 2.0 and config["inputs"]["no_rebuild"] is False
    _invoke("bench", "retrieval", "--scales", "", "--out", str(tmp_path / "mine"))  # --out is the run folder
    _check_layout(tmp_path / "mine", "bench retrieval")
    assert (tmp_path / "mine" / "report.json").is_file() and not runs_dir.exists()


def _cases(path: Path, per_category: int = 2) -> Path:
    seen: dict[str, int] = {}
    lines = []
    for line in (ROOT / "data" / "eval" / "consult_dev.jsonl").read_text(encoding="utf-8").splitlines():
        category = json.loads(line)["category"]
        if seen.get(category, 0) < per_category and category in ("emergency", "drug_question", "routine_report"):
            seen[category] = seen.get(category, 0) + 1
            lines.append(line)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_eval_runs_compare_and_report(tmp_path, runs_dir):
    """Two real consultation runs on six cases: records, compare by name, and kmed report over both."""
    pytest.importorskip("wandb")
    data = _cases(tmp_path / "six.jsonl")
    _invoke("eval", "grounded", "--data", str(data), "--json", "--report-to", "wandb")
    _invoke("eval", "grounded", "--data", str(data), "--no-classifier", "--json")
    a = _only(runs_dir, "*-eval-grounded-six-dev")
    b = _only(runs_dir, "*-eval-grounded-six-dev-no-classifier")
    config, metrics = _check_layout(a, "eval grounded")
    assert metrics["cases"] == 6 and set(metrics["per_category"]) == {"emergency", "drug_question", "routine_report"}
    assert "failures" not in metrics and config["inputs"]["data"] == str(data)
    rows = [json.loads(line) for line in (a / "cases.jsonl").read_text().splitlines()]
    assert len(rows) == 6 and {"id", "category", "passed", "checks", "expected", "got"} <= set(rows[0])
    assert "categories.png" in (a / "report.md").read_text()
    (offline,) = (a / "wandb").glob("offline-run-*")  # the evaluation in an offline W&B run
    assert b"eval/pass_rate" in next(offline.glob("run-*.wandb")).read_bytes()

    compared = json.loads(_invoke("eval", "compare", a.name, b.name, "--json").stdout)  # names under runs/
    assert compared["cases"] == 6 and "pass" in compared["metrics"]

    out = tmp_path / "report"
    _invoke("report", str(a), b.name, "--out", str(out), "--html")
    page = (out / "report.md").read_text(encoding="utf-8")
    assert f"| {a.name} |" in page and f"| {b.name} |" in page and "| 응급 (emergency) |" in page
    assert "McNemar p" in page and "![범주별 통과율](categories.png)" in page
    assert (out / "categories.png").stat().st_size > 5000
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "<table>" in html and '<img src="categories.png"' in html


def test_plots_use_a_font_with_hangul():
    from kmed.eval import plots

    family, path = plots.korean_font()
    assert family and plots._covers_hangul(path)


def test_without_matplotlib_a_run_still_records_and_report_names_the_extra(tmp_path, runs_dir, monkeypatch):
    import sys

    from kmed.eval import plots

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setattr(plots, "_state", {})
    record = runs.open_run("eval grounded", {})
    with runs.active(record):
        record.metrics({"cases": 1, "pass_rate": 1.0, "per_category": {"emergency": {"cases": 1, "pass_rate": 1.0}}})
    from kmed.cli.record import _render

    _render(record)
    assert "kmed[report]" in (record.path / "report.md").read_text() and not list(record.path.glob("*.png"))
    result = CliRunner().invoke(app, ["report", str(record.path), "--out", str(tmp_path / "r")])
    assert isinstance(result.exception, KmedError) and "kmed[report]" in result.exception.fix


# ---- compression: stages, gates and both trackers ------------------------------------------------


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory):
    from kmed.llm.compression.evaluate import medical_corpus
    from kmed.llm.tiny import save_tiny_model

    return save_tiny_model(tmp_path_factory.mktemp("tiny") / "base", arch="gpt_neox", texts=medical_corpus())


def _recipe(path: Path, gate: str) -> Path:
    path.write_text("name: t\neval: {memory_subprocess: false, speed_prompt_tokens: 8, speed_new_tokens: 3, "
                    "ppl_seq_len: 64, max_eval_blocks: 16}\n"
                    f"stages:\n  - {{kind: unstructured, sparsity: 0.3, gate: {gate}}}\n  - {{kind: quantize, scheme: int8}}\n",
                    encoding="utf-8")
    return path


def test_compress_records_every_stage_and_gate(tiny_base, tmp_path, runs_dir):
    recipe = _recipe(tmp_path / "r.yaml", "{max_ppl_ratio: 5}")
    _invoke("compress", "--base", str(tiny_base), "--out", str(tmp_path / "small"), "--recipe", str(recipe),
            "--json", "--report-to", "tensorboard")
    run = _only(runs_dir, "*-compress-small")
    _, metrics = _check_layout(run, "compress")
    assert metrics["status"] == "complete" and [s["name"] for s in metrics["stages"]] == ["base", "01-unstructured", "02-quantize"]
    assert metrics["stages"][1]["gate"]["passed"] and metrics["final"]["size_ratio"] < 0.5
    scalars = _scalars(run / "tensorboard")  # one step per stage
    assert [step for step, _ in scalars["compress/ppl"]] == [0, 1, 2] and scalars["gate/passed"] == [(1, 1.0), (2, 1.0)]
    assert {"quality_size.png", "quality_speed.png"} <= {p.name for p in run.glob("*.png")}


def test_a_failed_gate_is_recorded_with_its_stages(tiny_base, tmp_path, runs_dir):
    pytest.importorskip("wandb")
    recipe = _recipe(tmp_path / "r.yaml", "{min_size_ratio_saving: 0.9}")  # unstructured saves no bytes
    result = CliRunner().invoke(app, ["compress", "--base", str(tiny_base), "--out", str(tmp_path / "small"),
                                      "--recipe", str(recipe), "--report-to", "wandb"])
    assert isinstance(result.exception, KmedError)
    run = _only(runs_dir, "*-compress-small")
    config = json.loads((run / "config.json").read_text())
    metrics = json.loads((run / "metrics.json").read_text())
    assert config["status"] == "failed" and metrics["status"] == "failed_gate"
    assert metrics["stages"][-1]["gate"]["passed"] is False and "size saving" in metrics["failure"]
    assert "**FAIL**" in (run / "report.md").read_text()
    (offline,) = (run / "wandb").glob("offline-run-*")  # the compression in an offline W&B run
    log = next(offline.glob("run-*.wandb")).read_bytes()
    assert b"compress/size_ratio" in log and b"gate/passed" in log


def test_report_draws_the_frontier_of_compress_and_bench_runs(tmp_path, runs_dir, monkeypatch):
    import kmed.llm.bench as bench

    def variant(gib: float, tok_s: float, peak_gib: float) -> dict:
        return {"bytes_on_disk": int(gib * 2**30), "decode_tok_s": tok_s, "peak_rss_bytes": int(peak_gib * 2**30), "goal_met": False}

    monkeypatch.setattr(bench, "run_bench", lambda *a, **k: {
        "shape": "tiny", "layers": 2, "prompt_tokens": 32, "goal_met_by": [],
        "variants": {"fp32": variant(5.2, 4.0, 5.5), "int8": variant(1.4, 7.5, 1.6), "int4": variant(0.8, 9.0, 1.0)}})
    _invoke("bench", "llm", "--shape", "tiny", "--json")
    bench_run = _only(runs_dir, "*-bench-llm-tiny")
    _check_layout(bench_run, "bench llm")
    stages = [{"name": "base", "kind": "base", "ppl": 12.0, "bytes_on_disk": 400 * 2**20, "decode_tok_s": 5.0,
               "peak_rss_bytes": 900 * 2**20},
              {"name": "01-quantize", "kind": "quantize", "ppl": 12.6, "bytes_on_disk": 120 * 2**20, "decode_tok_s": 9.0,
               "peak_rss_bytes": 300 * 2**20, "gate": {"passed": True, "checks": ["ppl ×1.050 ≤ ×1.1"], "failed": []}}]
    from kmed.eval.run_report import compression_metrics

    compress_run = tmp_path / "old-compress"
    compress_run.mkdir()
    (compress_run / "metrics.json").write_text(json.dumps(compression_metrics(stages, "complete")))
    out = tmp_path / "frontier"
    _invoke("report", str(compress_run), str(bench_run), "--out", str(out))
    page = (out / "report.md").read_text(encoding="utf-8")
    assert "| old-compress | 01-quantize | 12.6 |" in page and "pass (ppl ×1.050 ≤ ×1.1)" in page
    for name in ("quality_size.png", "quality_speed.png", "quality_memory.png", "speed_size.png", "memory_size.png"):
        assert f"]({name})" in page and (out / name).stat().st_size > 5000


def test_report_refuses_a_folder_that_is_not_a_run(tmp_path):
    result = CliRunner().invoke(app, ["report", str(tmp_path)])
    assert isinstance(result.exception, KmedError) and "실행 기록이 아니에요" in str(result.exception)
