"""Run records for commands: ``@recorded`` on a command writes ``runs/<UTC time>-<name>/`` (kmed/runs.py).

    @eval_app.command("grounded")
    @recorded("eval grounded", label=("which", "no_classifier"), folder="out")
    def eval_grounded(...):
        tracker = track(report_to)          # --report-to writes into the run folder
        ...
        current().cases(rows)               # cases.jsonl
        return report                       # metrics.json; report.md and its plots follow

The command's options are the record's inputs; a dict it returns is its metrics. ``folder`` names
an option that, when given, is the run folder itself (``--out``, ``--run-dir``). Under torchrun only
rank 0 records.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
from collections.abc import Callable
from pathlib import Path

from kmed import runs
from kmed.errors import KmedError
from kmed.runs import current

__all__ = ["current", "recorded", "record_compression", "track"]


def _label(inputs: dict, keys: tuple[str, ...]) -> str | None:
    parts = []
    for key in keys:
        value = inputs.get(key)
        if value is True:
            parts.append(key.replace("_", "-"))
        elif value not in (None, False, ""):
            parts.append(Path(value).stem if isinstance(value, Path) else str(value))
    return "-".join(parts) or None


def recorded(command: str, label: tuple[str, ...] = (), folder: str | None = None):
    def decorate(fn: Callable) -> Callable:
        signature = inspect.signature(fn)

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            if os.environ.get("RANK", "0") != "0":
                return fn(*args, **kwargs)
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            inputs = dict(bound.arguments)
            record = runs.open_run(command, inputs, _label(inputs, label), inputs.get(folder) if folder else None)
            if record is None:
                return fn(*args, **kwargs)
            try:
                with runs.active(record):
                    result = fn(*args, **kwargs)
                    if isinstance(result, dict):
                        record.metrics(result)
            finally:
                if record.path.is_dir():
                    _render(record)
            return result

        return wrapper

    return decorate


def _render(record: runs.RunRecord) -> None:
    """The run's report.md and plots; a failure here never fails the run, whose results are on disk."""
    from kmed.eval.run_report import render

    try:
        render([runs.read(record.path)], record.path, title=f"{record.config['command']}: {record.path.name}")
    except Exception as exc:  # noqa: BLE001 - the page is a view of files already written
        record.report(f"# {record.path.name}\n\n보고서 페이지를 만들지 못했어요 ({type(exc).__name__}: {exc}). "
                      f"결과는 metrics.json 에 있어요.\n")


def track(report_to: str | None):
    """The ``--report-to`` tracker, writing into the open run folder."""
    from kmed.eval.tracking import KINDS, NoTracker, make_tracker

    kind = (report_to or "none").lower()
    if kind == "none" or os.environ.get("RANK", "0") != "0":
        return NoTracker()
    record = current()
    if record.path is None and kind in KINDS:
        raise KmedError(f"--report-to {kind}은(는) 실행 기록 폴더에 기록해요. --no-record 로는 쓸 곳이 없어요.",
                        "--no-record 를 빼거나, 명령에 --out DIR (train lora 는 --run-dir DIR) 을 주세요.")
    return make_tracker(kind, record.path or ".", (record.path or Path(".")).name, record.config.get("inputs"))


def record_compression(run_pipeline: Callable[[], dict], out: Path, report_to: str | None) -> dict:
    """Run the pipeline; every stage's numbers and gate go to metrics.json and the tracker, a failed gate's too."""
    from kmed.eval.run_report import compression_metrics
    from kmed.llm.compression.pipeline import GateFailed

    tracker = track(report_to)
    try:
        try:
            result = run_pipeline()
        except GateFailed as exc:
            saved = out.with_name(out.name + ".failed") / "results.json"
            if saved.is_file():
                stages = json.loads(saved.read_text(encoding="utf-8"))["stages"]
                _log_stages(tracker, {**compression_metrics(stages, "failed_gate", exc.message), "out": str(saved.parent)})
            raise
        _log_stages(tracker, {**compression_metrics(result["stages"], result["status"]), "out": result["out"]})
        return result
    finally:
        tracker.finish()


def _log_stages(tracker, metrics: dict) -> None:
    from kmed.eval.run_report import stage_steps

    current().metrics(metrics)
    for step, values in stage_steps(metrics):
        tracker.log_metrics(values, step=step)
    tracker.log_config({"gates": {s["name"]: s["gate"] for s in metrics["stages"] if s.get("gate")}})
