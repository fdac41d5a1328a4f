"""Reading the DUR files a user downloaded: CSV (UTF-8 with or without BOM, or CP949) and XLSX.

    raw = read_table(Path("~/Downloads/dur/임부금기.csv"))
    raw.header, raw.encoding, list(raw.iter_rows())

Both readers share one header sniffer: the first non-blank row is the header, and the rows after it
are peeked to check the file's shape. Data rows are streamed, so a large file is never held whole.
Every problem with a user's file is a ``KmedError`` that names its fix.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from kmed.errors import KmedError

SUPPORTED_SUFFIXES = (".csv", ".tsv", ".xlsx", ".xlsm")
_ENCODINGS = ("utf-8-sig", "cp949")
_PEEK_ROWS = 2000
_CHUNK = 1 << 20

Rows = Callable[[], Iterator[list[str]]]


@dataclass
class RawTable:
    """A file's header and a way to stream its data rows (row i sits on line i + 2; the header is 1)."""

    path: Path
    header: list[str]
    iter_rows: Rows
    encoding: str = ""


def _malformed(path: Path, detail: str) -> KmedError:
    return KmedError(
        f"'{path.name}'이(가) 올바른 CSV 형식이 아니에요: {detail}",
        "따옴표나 구분자(쉼표)가 깨졌거나 파일이 잘렸을 수 있어요. 원본을 다시 내려받거나, 엑셀에서 열어 "
        "'CSV UTF-8(쉼표로 분리)' 형식으로 다시 저장한 뒤 실행하세요.",
    )


def _sniff_header(path: Path, stream: Rows) -> tuple[list[str], list[list[str]]]:
    """The first non-blank row as the header, and up to ``_PEEK_ROWS`` rows after it."""
    rows = stream()
    header: list[str] | None = None
    peeked: list[list[str]] = []
    for row in rows:
        if header is None:
            if any(cell.strip() for cell in row):
                header = [cell.strip() for cell in row]
            continue
        peeked.append(row)
        if len(peeked) >= _PEEK_ROWS:
            break
    rows.close()
    if header is None:
        raise KmedError(f"'{path.name}'이(가) 비어 있어요.", "DUR 파일을 다시 내려받아 폴더에 넣으세요.")
    return header, peeked


def _data_rows(stream: Rows) -> Rows:
    """The non-blank rows after the header, streamed afresh on every call."""

    def data_rows() -> Iterator[list[str]]:
        seen_header = False
        for row in stream():
            if not seen_header:
                seen_header = any(cell.strip() for cell in row)
                continue
            if any(cell.strip() for cell in row):
                yield row

    return data_rows


def _detect_encoding(path: Path) -> str:
    """The first of UTF-8 (BOM or not) and CP949 that decodes the whole file, checked in chunks."""
    with open(path, "rb") as handle:
        head = handle.read(4096)
    if b"\x00" in head:
        raise KmedError(
            f"'{path.name}'은(는) 텍스트 CSV가 아니에요(이진 파일로 보여요).",
            "엑셀에서 열어 'CSV UTF-8(쉼표로 분리)' 형식으로 다시 저장한 뒤 실행하세요.",
        )
    for encoding in _ENCODINGS:
        decoder = codecs.getincrementaldecoder(encoding)()
        try:
            with open(path, "rb") as handle:
                while chunk := handle.read(_CHUNK):
                    decoder.decode(chunk)
                decoder.decode(b"", final=True)
            return encoding
        except UnicodeDecodeError:
            continue
    raise KmedError(
        f"'{path.name}'의 문자 인코딩을 읽지 못했어요(UTF-8도 CP949도 아니에요).",
        "엑셀이나 메모장에서 'UTF-8' 인코딩의 CSV로 다시 저장한 뒤 실행하세요.",
    )


def _check_shape(path: Path, header: list[str], sample: list[list[str]]) -> None:
    data = [row for row in sample if any(cell.strip() for cell in row)]
    width = len(header)
    ragged = sum(1 for row in data if len(row) != width)
    if width < 2:
        raise _malformed(path, "머리글에 칸이 하나뿐이에요(구분자가 쉼표나 탭이 아니에요)")
    if data and ragged > max(2, len(data) // 5):
        raise _malformed(
            path, f"앞쪽 {len(data)}개 행 가운데 {ragged}개 행의 칸 수가 머리글({width}칸)과 달라요"
        )


def read_csv(path: Path) -> RawTable:
    encoding = _detect_encoding(path)
    with open(path, encoding=encoding, newline="") as handle:
        sample = handle.read(8192)
    delimiter = "\t" if sample.count("\t") > sample.count(",") else ","

    def stream() -> Iterator[list[str]]:
        with open(path, encoding=encoding, newline="") as handle:
            reader = csv.reader(handle, delimiter=delimiter, strict=True)
            try:
                yield from reader
            except csv.Error as exc:
                raise _malformed(path, f"{reader.line_num}번째 줄 근처에서 {exc}") from exc

    header, peeked = _sniff_header(path, stream)
    _check_shape(path, header, peeked)
    return RawTable(path, header, _data_rows(stream), encoding)


def read_xlsx(path: Path) -> RawTable:
    try:
        import openpyxl
    except ImportError as exc:
        raise KmedError(
            f"'{path.name}'은(는) 엑셀(XLSX) 파일인데 openpyxl이 설치되어 있지 않아요.",
            "엑셀에서 'CSV UTF-8' 형식으로 저장해 같은 폴더에 두거나, 'pip install openpyxl' 후 다시 실행하세요.",
        ) from exc

    def stream() -> Iterator[list[str]]:
        try:
            workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
        except Exception as exc:  # noqa: BLE001 - any unreadable workbook is a problem with the user's file
            raise KmedError(
                f"'{path.name}' 엑셀 파일을 열지 못했어요({type(exc).__name__}).",
                "파일이 손상되지 않았는지 확인하고, 엑셀에서 'CSV UTF-8' 형식으로 다시 저장해 보세요.",
            ) from exc
        try:
            for values in workbook.worksheets[0].iter_rows(values_only=True):
                yield ["" if v is None else str(v) for v in values]
        finally:
            workbook.close()

    header, _ = _sniff_header(path, stream)
    return RawTable(path, header, _data_rows(stream), "xlsx")


def read_table(path: Path) -> RawTable:
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        return read_xlsx(path)
    return read_csv(path)
