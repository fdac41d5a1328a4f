"""``import_dur``: every DUR file in a folder → KG edges on KB drugs, written atomically, with a report."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from kmed.artifacts import write_jsonl
from kmed.data.dur.handlers import map_table
from kmed.data.dur.matcher import DrugMatcher
from kmed.data.dur.readers import SUPPORTED_SUFFIXES, read_table
from kmed.data.dur.report import EdgeSink, ImportReport, Unmatched
from kmed.data.dur.vocab import TABLES, detect_table
from kmed.data.kb import KnowledgeBase
from kmed.errors import KmedError


def default_output() -> Path:
    from kmed.paths import default_processed_dir

    return default_processed_dir() / "kg_edges" / "dur.jsonl"


def _files(folder: Path) -> Iterator[Path]:
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.name.startswith((".", "~$")):
            yield path


def _check_folder(folder: Path) -> None:
    if not folder.exists():
        raise KmedError(
            f"DUR 폴더를 찾을 수 없어요: {folder}",
            "공공데이터포털에서 내려받은 DUR 파일(CSV/XLSX)을 한 폴더에 모으고 그 경로를 넘겨 주세요. 예: kmed kg import-dur ~/Downloads/dur",
        )
    if not folder.is_dir():
        raise KmedError(
            f"'{folder}'은(는) 폴더가 아니에요.", "DUR 파일들이 들어 있는 폴더의 경로를 넘겨 주세요."
        )


def _nothing_recognised(folder: Path, candidates: list[Path], errors: list[tuple[Path, KmedError]]) -> KmedError:
    if errors and len(errors) == len(candidates):
        first = errors[0][1]
        return KmedError(first.message, first.fix)
    seen = ", ".join(p.name for p in candidates[:8]) or "(CSV/XLSX 파일 없음)"
    unreadable = f" 읽지 못한 파일: {', '.join(p.name for p, _ in errors)}." if errors else ""
    return KmedError(
        f"'{folder}'에서 DUR 표로 알아볼 수 있는 파일을 찾지 못했어요. 살펴본 파일: {seen}.{unreadable}",
        "공공데이터포털/한국의약품안전관리원에서 받은 DUR 성분 파일(병용금기, 임부금기, 연령금기, 노인주의, "
        "수유부주의, 용량주의, 효능군중복)을 원래 머리글(성분명, 성분코드, 금기사유 등) 그대로 CSV나 XLSX로 넣어 주세요.",
    )


def import_dur(
    folder: str | Path,
    kb: KnowledgeBase | None = None,
    out_path: str | Path | None = None,
    write: bool = True,
) -> ImportReport:
    """Read every DUR file under ``folder``, map it onto KB drugs and write the edges.

    Raises ``KmedError`` (a plain Korean message with its fix) for a missing folder, a folder without
    any recognisable DUR file, or when every candidate file is unreadable. A single bad file among good
    ones is skipped with a warning in the report.
    """
    folder = Path(folder).expanduser()
    _check_folder(folder)
    if kb is None:
        from kmed.data.kb import load_kb_or_fail

        kb = load_kb_or_fail()
    matcher = DrugMatcher(kb)
    out = Path(out_path) if out_path is not None else default_output()
    report = ImportReport(folder=str(folder), output=str(out) if write else None, kb_drugs=matcher.drug_count)
    sink = EdgeSink()

    candidates = [p for p in _files(folder) if p.suffix.lower() in SUPPORTED_SUFFIXES]
    errors: list[tuple[Path, KmedError]] = []
    recognised = 0
    for path in candidates:
        try:
            raw = read_table(path)
            table = detect_table(path, raw.header)
            if table is None:
                report.skipped_files.append(path.name)
                continue
            file_sink, file_unmatched = EdgeSink(), Unmatched()
            tables = map_table(raw, table, matcher, file_sink, file_unmatched)
        except KmedError as exc:
            errors.append((path, exc))
            report.warnings.append(f"{exc.message} → {exc.fix}" if exc.fix else exc.message)
            continue
        except OSError as exc:
            error = KmedError(
                f"'{path.name}'을(를) 읽지 못했어요: {exc.strerror or exc}", "파일 권한과 경로를 확인하세요."
            )
            errors.append((path, error))
            report.warnings.append(f"{error.message} → {error.fix}")
            continue
        recognised += 1
        report.tables.extend(tables)
        report.unmatched.update(file_unmatched)
        sink.update(file_sink)

    if recognised == 0:
        raise _nothing_recognised(folder, candidates, errors)

    order = list(TABLES)
    report.tables.sort(key=lambda t: (order.index(t.table) if t.table in order else len(order), t.file))
    report.edges_written = write_edges(sink.edges.values(), out) if write else len(sink.edges)
    return report


def write_edges(edges: Iterable[dict], out: Path) -> int:
    """Write the edges as JSON lines; a temp file next to ``out`` is renamed into place (atomic)."""
    return write_jsonl(Path(out), edges)
