"""Entry point of the ``kmed`` console script.

    kmed chat | ask | build | kb | data | train | compress | eval | bench | model

Errors a user can fix (``KmedError``) print as one plain message; anything unexpected prints a
one-line summary and how to get details (``KMED_DEBUG=1``), never a bare traceback.
"""

from __future__ import annotations

import logging
import os
import sys

import typer
from rich.console import Console

from kmed.cli import kb_cmd
from kmed.cli.groups import bench_app, build_app, eval_app, kg_app
from kmed.errors import EXTRAS, KmedError

app = typer.Typer(
    name="kmed",
    help="kmed: 한국어 의료 상담 도우미 (근거와 출처가 있는 답변)",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(kb_cmd.app, name="kb")
app.add_typer(build_app, name="build")
app.add_typer(eval_app, name="eval")
app.add_typer(bench_app, name="bench")
app.add_typer(kg_app, name="kg")

err_console = Console(stderr=True)


@app.callback()
def _run_records(
    runs_dir: str = typer.Option(None, "--runs-dir", help="실행 기록 폴더 (기본: $KMED_RUNS_DIR 또는 runs/)"),
    no_record: bool = typer.Option(False, "--no-record", help="train·compress·eval·bench 의 실행 기록을 남기지 않기"),
) -> None:
    from kmed import runs

    runs.configure(runs_dir, enabled=not no_record)


def _register_optional_commands() -> None:
    """Areas register here; each module owns its own commands."""
    import importlib

    for module_name in (
        "kmed.cli.core_cmd",  # ask, chat, build
        "kmed.cli.eval_cmd",  # eval retrieval/grounded, bench retrieval/agent
        "kmed.cli.safety_cmd",  # eval safety (external benchmarks by path)
        "kmed.cli.kg_cmd",  # kg import-dur
        "kmed.cli.data_cmd",  # data prepare
        "kmed.cli.train_cmd",  # train lora
        "kmed.cli.compress_cmd",  # compress, bench llm
        "kmed.cli.serve_cmd",  # serve, bench serve
        "kmed.cli.report_cmd",  # report
        "kmed.cli.model_cmd",  # model fetch
    ):
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue
            raise
        module.register(app)


_register_optional_commands()


class _KmedRecordsOnly(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.name == "kmed" or record.name.startswith("kmed.")


def quiet_third_party() -> None:
    """Only kmed's own warnings reach the terminal: a library's log records and Python warnings
    (e.g. bitsandbytes' "Failed to load CPU gemm_4bit_forward …") never print above an answer.
    ``KMED_DEBUG=1`` leaves everything as it is. ``kmed serve`` replaces this with its JSON log."""
    if os.environ.get("KMED_DEBUG"):
        return
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")  # transformers prints through its own handler
    logging.captureWarnings(True)  # warnings.warn → the "py.warnings" logger, filtered out below
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.addFilter(_KmedRecordsOnly())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)


def main() -> None:
    quiet_third_party()
    try:
        app()  # standalone: usage errors and typer.Exit become SystemExit with the right code
    except KmedError as exc:
        err_console.print(f"[red]오류:[/red] {exc.message}", soft_wrap=True)
        if exc.fix:
            err_console.print(f"[yellow]해결 방법:[/yellow] {exc.fix}", soft_wrap=True)
        sys.exit(2)
    except ModuleNotFoundError as exc:  # an optional extra a feature needs (kmed.errors.EXTRAS)
        package = (exc.name or "").split(".")[0]
        if package not in EXTRAS or os.environ.get("KMED_DEBUG"):
            _unexpected(exc)
        err_console.print(f"[red]오류:[/red] 이 기능에는 {package} 패키지가 필요한데 설치되어 있지 않아요.", soft_wrap=True)
        err_console.print(f"[yellow]해결 방법:[/yellow] pip install 'kmed[{EXTRAS[package]}]' 로 설치하세요.", soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err_console.print("중단했어요.")
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - last line of defence for users
        _unexpected(exc)


def _unexpected(exc: Exception) -> None:
    if os.environ.get("KMED_DEBUG"):
        raise exc
    err_console.print(f"[red]예상하지 못한 오류가 났어요:[/red] {type(exc).__name__}: {exc}", soft_wrap=True)
    err_console.print("자세한 내용은 KMED_DEBUG=1 을 붙여 다시 실행해 주세요.")
    sys.exit(1)


if __name__ == "__main__":
    main()
