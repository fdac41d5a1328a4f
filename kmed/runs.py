"""One run record for every ``kmed train``, ``kmed compress``, ``kmed eval …`` and ``kmed bench …`` (ground floor).

    runs/<UTC time>-<name>/
        config.json     the exact inputs, command line, git commit, package versions, machine, status
        metrics.json    the run's results (what the command printed or returned)
        cases.jsonl     one line per case, when the command has cases (eval grounded, retrieval, safety)
        report.md       the results as a page, with its plots (*.png) beside it
        tensorboard/, wandb/, mlruns/   the tracker's own files, with --report-to

Where records go: ``kmed --runs-dir DIR …``, else ``$KMED_RUNS_DIR``, else ``runs/`` in the project.
``kmed --no-record …`` writes none (a command given its own folder, ``--out`` or ``--run-dir``,
still records there). A run that fails before writing anything but its config leaves no folder;
one that fails later keeps what it wrote, with ``status: "failed"`` and the error in config.json.
JSON files are written to a temporary name and renamed, so a reader never sees half a file.
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from kmed.errors import KmedError
from kmed.paths import PROJECT_ROOT

SCHEMA = 1
RUNS_ENV = "KMED_RUNS_DIR"
CONFIG, METRICS, CASES, REPORT = "config.json", "metrics.json", "cases.jsonl", "report.md"
PACKAGES = ("kmed", "torch", "transformers", "peft", "sentence-transformers", "faiss-cpu", "kiwipiepy", "bm25s",
            "scikit-learn", "numpy", "matplotlib")

_settings: dict = {"runs_dir": None, "enabled": True}
_active: list[RunRecord] = []


def configure(runs_dir: str | Path | None = None, enabled: bool = True) -> None:
    """The CLI's ``--runs-dir`` and ``--no-record``; None leaves the choice to ``$KMED_RUNS_DIR``."""
    _settings.update(runs_dir=Path(runs_dir) if runs_dir else None, enabled=enabled)


def runs_dir() -> Path:
    chosen = _settings["runs_dir"] or os.environ.get(RUNS_ENV)
    return Path(chosen) if chosen else PROJECT_ROOT / "runs"


def slug(text: str) -> str:
    return re.sub(r"[^\w.-]+", "-", str(text)).strip("-.")[:80] or "run"


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _json(value) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2, default=str)


def git_state(root: Path = PROJECT_ROOT) -> dict:
    """The commit the code came from and whether tracked files had uncommitted changes."""
    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    dirty = git("status", "--porcelain", "--untracked-files=no") if commit else None
    return {"commit": commit, "dirty": bool(dirty) if dirty is not None else None}


def package_versions(names: Iterable[str] = PACKAGES) -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def machine() -> dict:
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    info = {"hostname": platform.node(), "platform": platform.platform(), "processor": platform.machine(),
            "cpu_count": os.cpu_count(), "loadavg": [round(x, 2) for x in load] if load else None}
    try:
        info["memory_gib"] = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (AttributeError, ValueError, OSError):
        info["memory_gib"] = None
    torch = sys.modules.get("torch")  # only when the command already loaded it: never imported for this
    if torch is not None and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def _now() -> datetime:
    return datetime.now(timezone.utc)


class RunRecord:
    """An open run folder; the command adds metrics, cases and the report as it goes."""

    def __init__(self, path: Path, config: dict, created: bool):
        self.path = path
        self.config = config
        self.created = created
        self._metrics: dict = {}
        self._started = time.time()
        self._write_config()

    def _write_config(self) -> None:
        write_atomic(self.path / CONFIG, _json(self.config))

    def metrics(self, values: dict) -> None:
        """Merge ``values`` into metrics.json (written at once, so a crash later keeps them)."""
        self._metrics.update(values)
        write_atomic(self.path / METRICS, _json(self._metrics))

    def cases(self, rows: Iterable[dict]) -> None:
        text = "".join(json.dumps(row, ensure_ascii=False, default=str) + "\n" for row in rows)
        write_atomic(self.path / CASES, text)

    def report(self, markdown: str) -> None:
        write_atomic(self.path / REPORT, markdown)

    def finish(self, status: str = "complete", error: str | None = None) -> None:
        self.config.update(status=status, finished_at=_now().isoformat(timespec="seconds"),
                           seconds=round(time.time() - self._started, 2))
        if error:
            self.config["error"] = error
        now = machine()
        self.config["machine_at_end"] = {"loadavg": now["loadavg"], "gpu": now.get("gpu")}
        self._write_config()

    def is_empty(self) -> bool:
        """Nothing but config.json written yet: a run stopped by bad input before any work."""
        return all(p.name == CONFIG or p.name.startswith(".") for p in self.path.iterdir())

    def discard(self) -> None:
        for item in self.path.iterdir():
            if item.is_file():
                item.unlink()
        self.path.rmdir()


class NoRecord:
    """What ``current()`` gives when no record is open: every write is a no-op."""

    path = None
    config: dict = {}

    def metrics(self, values: dict) -> None:
        pass

    def cases(self, rows: Iterable[dict]) -> None:
        pass

    def report(self, markdown: str) -> None:
        pass


def current() -> RunRecord | NoRecord:
    return _active[-1] if _active else NoRecord()


def open_run(command: str, inputs: dict, label: str | None = None, folder: str | Path | None = None) -> RunRecord | None:
    """A new record for ``command``: in ``folder`` when given, else ``<runs dir>/<UTC time>-<name>``.

    Returns None under ``--no-record`` without a folder of the command's own.
    """
    started = _now()
    if folder is not None:
        path, created = Path(folder), not Path(folder).exists()
    elif not _settings["enabled"]:
        return None
    else:
        name = slug(command.replace(" ", "-") + (f"-{label}" if label else ""))
        base = runs_dir() / f"{started.strftime('%Y%m%d-%H%M%S')}-{name}"
        path, n = base, 1
        while path.exists():
            n += 1
            path = base.with_name(f"{base.name}-{n}")
        created = True
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise KmedError(f"실행 기록 폴더 '{path}'를 만들 수 없어요 ({exc}).",
                        f"--runs-dir 또는 {RUNS_ENV} 로 쓸 수 있는 폴더를 주거나, --no-record 로 기록 없이 실행하세요.") from exc
    config = {"schema": SCHEMA, "command": command, "name": path.name,
              "argv": ["kmed", *sys.argv[1:]] if Path(sys.argv[0]).name == "kmed" else None,
              "inputs": {key: _plain(value) for key, value in inputs.items()}, "status": "running",
              "started_at": started.isoformat(timespec="seconds"), "git": git_state(),
              "versions": package_versions(), "machine": machine()}
    return RunRecord(path, config, created)


def _plain(value):
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)


@contextmanager
def active(record: RunRecord) -> Iterator[RunRecord]:
    """``current()`` is ``record`` inside the block; the record is finished as the block ends."""
    _active.append(record)
    try:
        yield record
    except KeyboardInterrupt:
        record.finish("interrupted")
        raise
    except SystemExit as exc:  # typer.Exit leaves as click's Exit, handled below; this is sys.exit
        record.finish("complete" if not exc.code else "failed", None if not exc.code else f"exit {exc.code}")
        raise
    except BaseException as exc:
        code = getattr(exc, "exit_code", None)
        if code == 0:
            record.finish("complete")
        elif record.created and record.is_empty():
            record.discard()
        else:
            message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
            record.finish("failed", message if code is None else f"exit {code}")
        raise
    else:
        record.finish("complete")
    finally:
        _active.remove(record)


def resolve(run: str | Path) -> Path:
    """A run folder by path, or by its name under the runs folder (``kmed eval compare 2026…-eval-grounded-dev …``)."""
    path = Path(run)
    if path.is_dir():
        return path
    named = runs_dir() / str(run)
    if named.is_dir():
        return named
    raise KmedError(f"실행 기록 '{run}'을(를) 찾지 못했어요.", f"폴더 경로나 {runs_dir()} 안의 이름을 주세요 (ls {runs_dir()}).")


def read(run: str | Path) -> dict:
    """A record as ``{"path", "name", "config", "metrics"}``.

    Folders from before run records are read too: an ``--out`` folder's report.json, or a
    ``kmed compress`` output's results.json (``{"meta", "stages"}``).
    """
    path = resolve(run)

    def load(name: str) -> dict:
        try:
            return json.loads((path / name).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except ValueError as exc:
            raise KmedError(f"{path / name}을(를) 읽을 수 없어요 ({exc}).", "그 실행을 다시 하거나 그 폴더를 빼고 실행하세요.") from exc

    config = load(CONFIG)
    metrics = load(METRICS) or load("report.json") or load("results.json")
    if not config and not metrics:
        raise KmedError(f"'{path}'는 실행 기록이 아니에요 (config.json, metrics.json 이 없어요).",
                        f"{runs_dir()} 아래의 폴더를 주세요.")
    return {"path": path, "name": path.name, "config": config, "metrics": metrics}
