"""Experiment trackers behind one small interface: ``--report-to none|tensorboard|wandb|mlflow``.

    kmed eval grounded --set dev --out runs/a --report-to tensorboard    # tensorboard --logdir runs/a/tensorboard
    kmed train lora --base … --out models/kmed-lora --report-to wandb      # wandb sync runs/…/wandb/offline-run-*

Where each backend writes, inside the run folder:

- ``none`` (the default): nothing, and no network ever.
- ``tensorboard``: ``<run_dir>/tensorboard/events.out.tfevents.*`` (``torch.utils.tensorboard.SummaryWriter``).
- ``wandb``: offline unless ``WANDB_MODE`` says otherwise, so ``<run_dir>/wandb/offline-run-*``;
  ``wandb sync <run_dir>/wandb/offline-run-*`` uploads it later from a machine with network.
- ``mlflow``: a SQLite store, ``<run_dir>/mlruns/mlflow.db`` (MLflow 3 refuses its plain-file store
  unless ``MLFLOW_ALLOW_FILE_STORE=true``); view with
  ``mlflow ui --backend-store-uri sqlite:///<run_dir>/mlruns/mlflow.db``.

Each backend is the library's own API; a missing package is a ``KmedError`` with the pip command.
Metrics may nest (``{"turn_latency_ms": {"p50": …}}``): they are flattened to ``turn_latency_ms/p50``,
and values that are not numbers (None, strings) are left out.
"""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path
from typing import Protocol

from kmed.errors import ConfigError, KmedError

KINDS = ("none", "tensorboard", "wandb", "mlflow")


class Tracker(Protocol):
    def log_config(self, config: dict) -> None: ...

    def log_metrics(self, metrics: dict, step: int | None = None) -> None: ...

    def finish(self) -> None: ...


def flatten(values: dict, prefix: str = "") -> dict[str, float]:
    """Nested numbers as ``a/b`` keys; booleans count as 0/1; anything else is dropped."""
    flat: dict[str, float] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}/"))
        elif isinstance(value, (bool, int, float)):
            flat[name] = float(value)
    return flat


def _require(module: str, package: str, kind: str):
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise KmedError(f"--report-to {kind}에 필요한 '{package}' 패키지가 설치되어 있지 않아요 ({exc}).",
                        f"pip install {package}  (또는 --report-to none)") from exc


class NoTracker:
    """Records nothing; the default."""

    def log_config(self, config: dict) -> None:
        pass

    def log_metrics(self, metrics: dict, step: int | None = None) -> None:
        pass

    def finish(self) -> None:
        pass


class TensorBoardTracker:
    def __init__(self, run_dir: Path):
        tb = _require("torch.utils.tensorboard", "tensorboard", "tensorboard")
        self.log_dir = run_dir / "tensorboard"
        self.writer = tb.SummaryWriter(log_dir=str(self.log_dir))

    def log_config(self, config: dict) -> None:
        text = json.dumps(config, ensure_ascii=False, indent=1, default=str)
        self.writer.add_text("config", f"```\n{text}\n```")

    def log_metrics(self, metrics: dict, step: int | None = None) -> None:
        for key, value in flatten(metrics).items():
            self.writer.add_scalar(key, value, global_step=step or 0)
        self.writer.flush()

    def finish(self) -> None:
        self.writer.close()


class WandbTracker:
    def __init__(self, run_dir: Path, name: str, config: dict):
        wandb = _require("wandb", "wandb", "wandb")
        run_dir.mkdir(parents=True, exist_ok=True)
        self.run = wandb.init(project="kmed", name=name, dir=str(run_dir), config=config,
                              mode=os.environ.get("WANDB_MODE", "offline"))

    def log_config(self, config: dict) -> None:
        self.run.config.update(config, allow_val_change=True)

    def log_metrics(self, metrics: dict, step: int | None = None) -> None:
        self.run.log(flatten(metrics), step=step)

    def finish(self) -> None:
        self.run.finish()


class MlflowTracker:
    def __init__(self, run_dir: Path, name: str):
        tracking = _require("mlflow.tracking", "mlflow", "mlflow")
        store = (run_dir / "mlruns").resolve()
        store.mkdir(parents=True, exist_ok=True)
        # A client of its own, not mlflow.set_tracking_uri: two runs in one process never share state.
        self.client = tracking.MlflowClient(tracking_uri=f"sqlite:///{store / 'mlflow.db'}")
        experiment = self.client.get_experiment_by_name("kmed")
        experiment_id = experiment.experiment_id if experiment else self.client.create_experiment(
            "kmed", artifact_location=(store / "artifacts").as_uri())
        self.run_id = self.client.create_run(experiment_id, run_name=name).info.run_id

    def log_config(self, config: dict) -> None:
        for key, value in _flat_params(config).items():
            self.client.log_param(self.run_id, key, value)

    def log_metrics(self, metrics: dict, step: int | None = None) -> None:
        for key, value in flatten(metrics).items():
            self.client.log_metric(self.run_id, key, value, step=step or 0)

    def finish(self) -> None:
        self.client.set_terminated(self.run_id)


def _flat_params(config: dict, prefix: str = "") -> dict[str, str]:
    params: dict[str, str] = {}
    for key, value in config.items():
        if isinstance(value, dict) and value:
            params.update(_flat_params(value, f"{prefix}{key}."))
        else:
            params[f"{prefix}{key}"] = json.dumps(value, ensure_ascii=False, default=str)[:6000]
    return params


def make_tracker(kind: str | None, run_dir: str | Path, name: str, config: dict | None = None) -> Tracker:
    """The tracker for ``--report-to KIND``, writing under ``run_dir``; ``config`` is logged at once."""
    kind = (kind or "none").lower()
    if kind not in KINDS:
        raise ConfigError(f"--report-to '{kind}'을(를) 몰라요.", f"{', '.join(KINDS)} 중 하나로 써 주세요.")
    run_dir = Path(run_dir)
    config = config or {}
    if kind == "none":
        return NoTracker()
    if kind == "tensorboard":
        tracker: Tracker = TensorBoardTracker(run_dir)
    elif kind == "wandb":
        return WandbTracker(run_dir, name, config)  # wandb.init takes the config itself
    else:
        tracker = MlflowTracker(run_dir, name)
    if config:
        tracker.log_config(config)
    return tracker
