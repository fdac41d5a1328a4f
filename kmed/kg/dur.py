"""Import the official Korean DUR ingredient lists and turn them into KG edges.

    kmed kg import-dur ~/Downloads/dur            # → data/processed/kg_edges/dur.jsonl
    kmed kg import-dur ~/Downloads/dur --json     # the report as JSON

Users download the DUR (의약품 안전사용서비스) files themselves from 공공데이터포털 / 한국의약품안전관리원:
병용금기, 임부금기, 특정연령대금기, 노인주의, 수유부주의, 용량주의(1일 최대용량), 투여기간주의, 효능군중복.
Each file's table is recognised from its column names (the official Korean headers, the OpenAPI field
names, or a snake_case repackaging such as ``igrd_nm``/``condi_rsn``), with the file name as a hint for
the tables whose columns look alike (노인주의, 수유부주의). CSV may be UTF-8 (with or without BOM) or
CP949; XLSX is read when openpyxl is installed.

Ingredient names are mapped onto KB drugs by their Korean or English names after normalisation (case,
spaces, punctuation, and trailing salt or hydrate words such as 염산염 / hydrochloride). A name that
could mean more than one KB drug, and a combination product whose components the KB does not hold as
one drug, stay unmatched: a wrong edge is worse than a missing one.

Edges (one JSON object per line; ``kmed.kg.graph.merge_extra_edges`` adds them to the graph):

- 병용금기: ``drug → drug``, ``interacts_with``, severity ``major`` (both directions);
- 효능군중복: ``drug → drug`` for KB drugs in the same group, ``interacts_with``, severity ``moderate``;
- 임부금기: ``drug → pregnancy``, ``contraindicated_in``, level ``contraindicated`` (with its grade);
- 특정연령대금기: ``drug → children | infants | elderly``, ``contraindicated_in``, level ``contraindicated``;
- 노인주의 / 수유부주의: ``drug → elderly | lactation``, ``contraindicated_in``, level ``caution``.

용량주의 and 투여기간주의 rows are read, matched and reported, but give no edge: the graph has no edge
type for a dose or duration limit.
"""

from __future__ import annotations

import csv
import json
import os
import re
import tempfile
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from kmed.data.kb import KnowledgeBase
from kmed.errors import KmedError

SOURCE_ID = "mfds_dur"

# Table keys, in report order, with their Korean labels.
TABLES: dict[str, str] = {
    "combination": "병용금기",
    "pregnancy": "임부금기",
    "age": "특정연령대금기",
    "elderly": "노인주의",
    "lactation": "수유부주의",
    "max_dose": "용량주의(1일 최대용량)",
    "duration": "투여기간주의",
    "efficacy_group": "효능군중복",
}
_EDGELESS = {"max_dose", "duration"}

# ---------------------------------------------------------------------------------------------------
# Column vocabulary. Headers are compared after _col(): lower case, without spaces, _ - ( ) / . and ·.
# ---------------------------------------------------------------------------------------------------


def _col(header: str) -> str:
    text = unicodedata.normalize("NFKC", str(header or "")).lower()
    return re.sub(r"[\s_\-()\[\]/.·,:]+", "", text)


def _cols(*names: str) -> tuple[str, ...]:
    return tuple(_col(n) for n in names)


# One ingredient per row (or the first ingredient of a pair). Codes are listed too: a repackaging may
# hold the name in its code column, and a real code never matches a drug name, so it costs nothing.
_NAME_SINGLE = _cols(
    "성분명",
    "DUR성분",
    "DUR성분명",
    "성분명(한글)",
    "한글성분명",
    "성분한글명",
    "DUR성분(영문)",
    "DUR성분명영문",
    "성분명(영문)",
    "영문성분명",
    "성분영문명",
    "일반명",
    "일반명(영문)",
    "주성분명",
    "INGR_NAME",
    "INGR_KOR_NAME",
    "INGR_ENG_NAME",
    "igrd_nm",
    "gnrl_nm",
    "mdcn_nm",
    "item_nm",
    "igrd_cd",
)
_NAME_FIRST = (
    _cols(
        "성분명1",
        "DUR성분명1",
        "성분1",
        "한글성분명1",
        "영문성분명1",
        "성분명(영문)1",
        "igrd_nm_1",
        "igrd_cd_1",
        "INGR_NAME_1",
        "INGR_ENG_NAME_1",
    )
    + _NAME_SINGLE
)
_NAME_SECOND = _cols(
    "성분명2",
    "DUR성분명2",
    "성분2",
    "한글성분명2",
    "영문성분명2",
    "성분명(영문)2",
    "병용금기DUR성분",
    "병용금기DUR성분(영문)",
    "병용금기성분명",
    "병용금기성분",
    "병용금기 성분명",
    "병용금기성분(영문)",
    "병용금기DUR성분명",
    "MIXTURE_INGR_KOR_NAME",
    "MIXTURE_INGR_ENG_NAME",
    "igrd_nm_2",
    "igrd_cd_2",
    "INGR_NAME_2",
    "INGR_ENG_NAME_2",
)
_REASON = _cols(
    "금기사유",
    "금기내용",
    "상세정보",
    "상세내용",
    "주의내용",
    "사유",
    "PROHBT_CONTENT",
    "condi_rsn",
    "dtl_info_cn",
)
_REMARK = _cols("비고", "REMARK", "rmrk_cn")
_TYPE = _cols("DUR유형", "TYPE_NAME", "유형", "DUR구분")
_GRADE = _cols("금기등급", "임부금기등급", "등급", "condi_grd_cd", "GRADE")
_AGE = _cols("특정연령", "연령", "금기연령", "rlvt_age", "AGE_BASE")
_AGE_UNIT = _cols("특정연령단위", "연령단위", "rlvt_age_unit_nm")
_AGE_COND = _cols("연령처리조건", "특정연령처리조건", "처리조건", "연령조건", "age_prcs_cnd_nm")
_MAX_DOSE = _cols(
    "1일최대투여량",
    "1일최대용량",
    "일일최대투여량",
    "1일최대투여기준량",
    "1일 최대 투여량",
    "day_max_admin_cpct_cn",
    "MAX_QTY",
)
_DURATION = _cols("최대투여기간일수", "최대투여기간", "투여기간", "max_admin_prd_day_cnt", "MAX_DOSAGE_TERM")
_EFF_GROUP = _cols("효능군", "효능군명", "효능군중복그룹", "eff_group_nm", "EFFECT_NAME", "SERS_NAME")
_EFF_SUBGROUP = _cols("그룹명", "group_nm")
_PRODUCT = _cols("제품명", "제품명1", "품목명", "ITEM_NAME", "prdct_nm", "prdct_nm_1", "제형", "FORM_NAME")

# File-name and key-column hints for tables whose columns look alike.
_NAME_HINTS: list[tuple[str, tuple[str, ...]]] = [
    ("combination", ("병용", "conc", "usjnt", "interaction")),
    ("pregnancy", ("임부", "임신", "prgnt", "pwnm", "pregnan")),
    ("age", ("연령", "agebann", "spcify", "agrde")),
    ("elderly", ("노인", "고령", "snctz", "odsn", "elder", "senior")),
    ("lactation", ("수유", "nursw", "lacp", "lactat", "breast")),
    ("max_dose", ("용량", "cpct", "dose", "dosage_max")),
    ("duration", ("투여기간", "기간", "mdctnpd", "period")),
    ("efficacy_group", ("효능군", "중복", "eftgrp", "efcy", "effect")),
]
_KEY_COLUMN_HINTS = {
    _col("snctz_cutn_sn"): "elderly",
    _col("lacp_sn"): "lactation",
    _col("pgw_condi_sn"): "pregnancy",
}
# Values of a DUR유형 column, for files that mix tables (the OpenAPI layout).
_TYPE_VALUES: list[tuple[str, tuple[str, ...]]] = [
    ("combination", ("병용",)),
    ("pregnancy", ("임부",)),
    ("age", ("연령",)),
    ("elderly", ("노인",)),
    ("lactation", ("수유",)),
    ("max_dose", ("용량",)),
    ("duration", ("투여기간",)),
    ("efficacy_group", ("효능군",)),
]

# ---------------------------------------------------------------------------------------------------
# Name normalisation
# ---------------------------------------------------------------------------------------------------

_KO_SALTS = (
    "브롬화수소산염",
    "타르타르산수소염",
    "황산수소염",
    "이염산염",
    "염산염",
    "황산염",
    "메실산염",
    "베실산염",
    "말레산염",
    "타르타르산염",
    "푸마르산염",
    "숙신산염",
    "시트르산염",
    "구연산염",
    "인산염",
    "아세트산염",
    "초산염",
    "질산염",
    "토실산염",
    "젖산염",
    "글루콘산염",
    "베실레이트",
    "메실레이트",
    "메독소밀",
    "실렉세틸",
    "히클레이트",
    "트로메타몰",
    "일수화물",
    "이수화물",
    "삼수화물",
    "반수화물",
    "수화물",
    "무수물",
    "나트륨",
    "칼륨",
    "칼슘",
    "마그네슘",
)
_EN_SALTS = (
    "hydrochloride",
    "dihydrochloride",
    "hcl",
    "hydrobromide",
    "sulfate",
    "sulphate",
    "bisulfate",
    "mesylate",
    "mesilate",
    "besylate",
    "besilate",
    "maleate",
    "tartrate",
    "bitartrate",
    "fumarate",
    "hemifumarate",
    "succinate",
    "citrate",
    "phosphate",
    "acetate",
    "nitrate",
    "tosylate",
    "lactate",
    "gluconate",
    "medoxomil",
    "cilexetil",
    "hyclate",
    "tromethamine",
    "trometamol",
    "monohydrate",
    "dihydrate",
    "trihydrate",
    "hemihydrate",
    "sesquihydrate",
    "hydrate",
    "anhydrous",
    "sodium",
    "disodium",
    "potassium",
    "dipotassium",
    "calcium",
    "magnesium",
)
# What may not be left over after removing a salt word: an ion or an acid is not a drug name.
_NOT_A_BASE = (
    set(_EN_SALTS)
    | set(_KO_SALTS)
    | {
        "구연산",
        "시트르산",
        "염산",
        "황산",
        "인산",
        "초산",
        "아세트산",
        "질산",
        "젖산",
        "citric",
        "citricacid",
        "hydroxide",
        "oxide",
        "chloride",
        "carbonate",
        "acid",
    }
)
_DROP_PHRASES = re.compile(r"(함유\s*제제|함유제제|함유|복합제|단일제|외용제|주사제|경구제|제제)$")
_COMBO_SPLIT = re.compile(r"\s*(?:\+|/|,|·|ㆍ|&|\band\b)\s*")
_PAREN = re.compile(r"[(\[（][^()\[\]（）]*[)\]）]")


def _squash(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    return re.sub(r"[\s'\"`´’\-_.]+", "", text)


def _strip_salts(name: str) -> str:
    """Remove trailing salt/hydrate words ("에스오메프라졸마그네슘삼수화물" → "에스오메프라졸") where safe."""
    lowered = unicodedata.normalize("NFKC", name).lower().strip()
    words = lowered.split()
    changed = True
    while changed and len(words) > 1:  # English: whole trailing words
        changed = False
        if words[-1] in _EN_SALTS and _squash(" ".join(words[:-1])) not in _NOT_A_BASE:
            words = words[:-1]
            changed = True
    squashed = _squash(" ".join(words))
    changed = True
    while changed:  # Korean: glued trailing suffixes
        changed = False
        for salt in _KO_SALTS:
            if squashed.endswith(salt):
                base = squashed[: -len(salt)]
                if len(base) >= 2 and base not in _NOT_A_BASE:
                    squashed = base
                    changed = True
                break
    return squashed


def name_keys(raw: str) -> list[str]:
    """Lookup keys for one ingredient name, most literal first; a combination gives one sorted key."""
    text = unicodedata.normalize("NFKC", str(raw or "")).strip()
    if not text:
        return []
    text = re.sub(r"^P_", "", text)
    text = _DROP_PHRASES.sub("", text).strip()
    inner = [m.group(0)[1:-1] for m in _PAREN.finditer(text)]
    outer = _PAREN.sub(" ", text).strip()
    keys: list[str] = []
    for candidate in [outer, *inner]:
        parts = [p for p in _COMBO_SPLIT.split(candidate) if p.strip()]
        if len(parts) > 1:
            keys.append("+".join(sorted(_strip_salts(p) for p in parts)))
            continue
        for key in (_squash(candidate), _strip_salts(candidate)):
            if key and key not in keys:
                keys.append(key)
    return [k for k in keys if len(k) >= 3 or any("가" <= ch <= "힣" for ch in k)]


def _looks_like_code(value: str) -> bool:
    return bool(re.fullmatch(r"[A-Z]{0,3}\d{3,}[A-Z0-9]*|0+", value.strip()))


# DUR names of non-drug things the KB knows as interaction partners (kb_schema.SUBSTANCES keys).
_SUBSTANCE_NAMES = {
    "st_johns_wort": (
        "st. john's wort",
        "st john's wort",
        "st. johns wort",
        "hypericum",
        "세인트존스워트",
        "성요한풀",
    ),
    "grapefruit": ("grapefruit", "grapefruit juice", "자몽", "자몽주스"),
    "alcohol": ("alcohol", "ethanol", "알코올", "에탄올"),
}


class DrugMatcher:
    """KB drug ids by normalised Korean or English name; ambiguous keys match nothing."""

    def __init__(self, kb: KnowledgeBase):
        index: dict[str, set[str]] = {}
        for drug in kb.drugs.values():
            for form in dict.fromkeys([drug.name, *drug.synonyms, *drug.english]):
                for key in name_keys(form):
                    index.setdefault(key, set()).add(drug.id)
        self.index = {k: next(iter(v)) for k, v in index.items() if len(v) == 1}
        self.ambiguous = {k for k, v in index.items() if len(v) > 1}
        self._cache: dict[str, str | None] = {}
        self.drug_count = len(kb.drugs)
        self.substances = {
            k: sub for sub, names in _SUBSTANCE_NAMES.items() for n in names for k in name_keys(n)
        }
        self.children_dosed = {d.id for d in kb.drugs.values() if d.dose is not None and d.dose.children}

    def match(self, raw: str) -> str | None:
        if raw in self._cache:
            return self._cache[raw]
        found = None
        for key in name_keys(raw):
            if key in self.ambiguous:
                break
            if key in self.index:
                found = self.index[key]
                break
        self._cache[raw] = found
        return found

    def match_substance(self, names: Iterable[str]) -> str | None:
        for name in names:
            for key in name_keys(name):
                if key in self.substances:
                    return self.substances[key]
        return None

    def match_any(self, names: Iterable[str]) -> str | None:
        for name in names:
            if name and not _looks_like_code(name):
                drug = self.match(name)
                if drug:
                    return drug
        return None


# ---------------------------------------------------------------------------------------------------
# Reading files
# ---------------------------------------------------------------------------------------------------

_ENCODINGS = ("utf-8-sig", "cp949")
SUPPORTED_SUFFIXES = (".csv", ".tsv", ".xlsx", ".xlsm")
_PEEK_ROWS = 2000
_CHUNK = 1 << 20


@dataclass
class RawTable:
    """A file's header and a way to stream its data rows (row i sits on line i + 2; the header is 1)."""

    path: Path
    header: list[str]
    iter_rows: Callable[[], Iterator[list[str]]]
    encoding: str = ""


def _malformed(path: Path, detail: str) -> KmedError:
    return KmedError(
        f"'{path.name}'이(가) 올바른 CSV 형식이 아니에요: {detail}",
        "따옴표나 구분자(쉼표)가 깨졌거나 파일이 잘렸을 수 있어요. 원본을 다시 내려받거나, 엑셀에서 열어 "
        "'CSV UTF-8(쉼표로 분리)' 형식으로 다시 저장한 뒤 실행하세요.",
    )


def _detect_encoding(path: Path) -> str:
    """The first of UTF-8 (BOM or not) and CP949 that decodes the whole file, checked in chunks."""
    import codecs

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
    _check_shape(path, header, peeked)

    def data_rows() -> Iterator[list[str]]:
        seen_header = False
        for row in stream():
            if not seen_header:
                seen_header = any(cell.strip() for cell in row)
                continue
            if any(cell.strip() for cell in row):
                yield row

    return RawTable(path, header, data_rows, encoding)


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

    header: list[str] | None = None
    peeked: list[list[str]] = []
    rows = stream()
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

    def data_rows() -> Iterator[list[str]]:
        seen_header = False
        for row in stream():
            if not seen_header:
                seen_header = any(cell.strip() for cell in row)
                continue
            if any(cell.strip() for cell in row):
                yield row

    return RawTable(path, header, data_rows, "xlsx")


def read_table(path: Path) -> RawTable:
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        return read_xlsx(path)
    return read_csv(path)


# ---------------------------------------------------------------------------------------------------
# Recognising tables
# ---------------------------------------------------------------------------------------------------


def _find(header_keys: list[str], candidates: tuple[str, ...]) -> list[int]:
    """Indexes of the header columns named by ``candidates``, in candidate order."""
    found: list[int] = []
    for cand in candidates:
        for i, key in enumerate(header_keys):
            if key == cand and i not in found:
                found.append(i)
    return found


def detect_table(path: Path, header: list[str]) -> str | None:
    """Which DUR table a file holds, from its columns first and its name second; None if none."""
    keys = [_col(h) for h in header]
    if _find(keys, _TYPE):
        return "mixed"
    has_name = bool(_find(keys, _NAME_FIRST))
    if not has_name and not _find(keys, _NAME_SECOND):
        return None
    if _find(keys, _NAME_SECOND):
        return "combination"
    if _find(keys, _MAX_DOSE):
        return "max_dose"
    if _find(keys, _DURATION):
        return "duration"
    if _find(keys, _EFF_GROUP):
        return "efficacy_group"
    if _find(keys, _AGE):
        return "age"
    if _find(keys, _GRADE):
        return "pregnancy"
    for key in keys:
        if key in _KEY_COLUMN_HINTS:
            return _KEY_COLUMN_HINTS[key]
    stem = _col(path.stem)
    for table, hints in _NAME_HINTS:
        if any(_col(h) in stem for h in hints):
            return table
    return None


def _type_of_value(value: str) -> str | None:
    for table, words in _TYPE_VALUES:
        if any(w in value for w in words):
            return table
    return None


# ---------------------------------------------------------------------------------------------------
# Mapping rows to edges
# ---------------------------------------------------------------------------------------------------


@dataclass
class TableReport:
    table: str
    file: str
    rows: int = 0
    matched: int = 0
    edges: int = 0

    def to_dict(self) -> dict:
        return {
            "table": self.table,
            "label": TABLES.get(self.table, self.table),
            "file": self.file,
            "rows": self.rows,
            "matched": self.matched,
            "edges": self.edges,
        }


@dataclass
class ImportReport:
    folder: str
    output: str | None
    kb_drugs: int
    tables: list[TableReport] = field(default_factory=list)
    unmatched: _Unmatched = field(default_factory=lambda: _Unmatched())
    edges_written: int = 0
    warnings: list[str] = field(default_factory=list)
    skipped_files: list[str] = field(default_factory=list)

    def totals(self) -> dict[str, int]:
        rows = sum(t.rows for t in self.tables)
        matched = sum(t.matched for t in self.tables)
        return {
            "rows": rows,
            "matched": matched,
            "coverage_pct": round(100 * matched / rows, 1) if rows else 0.0,
        }

    def to_dict(self, top: int = 20) -> dict:
        return {
            "folder": self.folder,
            "output": self.output,
            "kb_drugs": self.kb_drugs,
            "tables": [t.to_dict() for t in self.tables],
            "totals": self.totals(),
            "edges_written": self.edges_written,
            "unmatched_top": [{"name": n, "rows": c} for n, c in self.unmatched.most_common(top)],
            "unmatched_distinct": len(self.unmatched),
            "warnings": self.warnings,
            "skipped_files": self.skipped_files,
        }


_DEFAULT_NOTES = {
    "combination": "함께 쓰면 안 되는 병용금기 성분 조합이에요(DUR).",
    "pregnancy": "임신 중에 쓰지 않아야 하는 임부금기 성분이에요(DUR).",
    "age": "이 연령대에는 쓰지 않아야 하는 특정연령대 금기 성분이에요(DUR).",
    "elderly": "노인에게 부작용 위험이 커서 주의가 필요한 성분이에요(DUR 노인주의).",
    "lactation": "수유 중인 아기에게 부작용 우려가 있어 주의가 필요한 성분이에요(DUR 수유부주의).",
    "efficacy_group": "같은 효능군이라 함께 쓰면 효과는 늘지 않고 부작용 위험이 커질 수 있어요(DUR 효능군중복).",
}


def _age_population(age: str, unit: str, cond: str, text: str) -> tuple[str, str]:
    """(population key, Korean age phrase) for a 특정연령대금기 row."""
    value = None
    if age and re.fullmatch(r"\d+(\.\d+)?", age.strip()):
        value = float(age)
    unit = (unit or "").strip()
    cond = (cond or "").strip()
    if value is None:  # the OpenAPI layout states the age inside the text: "12세 미만의 소아"
        m = re.search(r"(\d+(?:\.\d+)?)\s*(세|개월|일|주)\s*(미만|이하|이상|초과)?", text or "")
        if m:
            value, unit, cond = float(m.group(1)), m.group(2), m.group(3) or cond
    if value is None:
        return "children", ""
    unit = unit or "세"
    months = value * {"세": 12, "개월": 1, "주": 12 / 52, "일": 12 / 365}.get(unit, 12)
    phrase = f"{value:g}{unit} {cond}".strip()
    if cond in ("이상", "초과"):
        return ("elderly" if months >= 60 * 12 else "children"), phrase
    return ("infants" if months <= 24 else "children"), phrase


class _EdgeSink:
    """Edges keyed by (src, dst, type): the first row states the edge, later rows add product names."""

    MAX_PRODUCTS = 5

    def __init__(self):
        self.edges: dict[tuple[str, str, str], dict] = {}

    def add(self, src: str, dst: str, edge_type: str, attrs: dict, products: Iterable[str] = ()) -> bool:
        key = (src, dst, edge_type)
        if src == dst:
            return False
        edge = self.edges.get(key)
        new = edge is None
        if new:
            edge = self.edges[key] = {"src": src, "dst": dst, "type": edge_type, **attrs}
        for product in products:
            listed = edge.setdefault("products", [])
            if product not in listed and len(listed) < self.MAX_PRODUCTS:
                listed.append(product)
        return new


class _Unmatched:
    """Unmatched ingredient names counted by normalised key, shown as first seen."""

    def __init__(self):
        self.counts: Counter = Counter()
        self.shown: dict[str, str] = {}

    def add(self, names: list[str]) -> None:
        shown = _display(names)
        keys = name_keys(shown)
        key = keys[0] if keys else shown
        self.shown.setdefault(key, shown)
        self.counts[key] += 1

    def update(self, other: _Unmatched) -> None:
        for key, count in other.counts.items():
            self.shown.setdefault(key, other.shown[key])
            self.counts[key] += count

    def most_common(self, n: int) -> list[tuple[str, int]]:
        return [(self.shown[k], c) for k, c in self.counts.most_common(n)]

    def __len__(self) -> int:
        return len(self.counts)


def _cell(row: list[str], indexes: list[int]) -> list[str]:
    return [row[i].strip() for i in indexes if i < len(row) and row[i] and row[i].strip()]


def _display(names: list[str]) -> str:
    readable = [n for n in names if not _looks_like_code(n)]
    hangul = [n for n in readable if any("가" <= ch <= "힣" for ch in n)]
    return (hangul or readable or names or [""])[0]


def _note(reason: str, remark: str, table: str, extra: str = "") -> str:
    base = reason.strip() or _DEFAULT_NOTES.get(table, "")
    note = f"{extra}: {base}" if extra else base
    remark = remark.strip()
    if remark and remark not in note:
        note = f"{note} (비고: {remark})"
    return note


def map_table(
    raw: RawTable, table: str, matcher: DrugMatcher, sink: _EdgeSink, unmatched: _Unmatched
) -> list[TableReport]:
    """Map one file's rows; a mixed (DUR유형) file gives one report per table it holds."""
    keys = [_col(h) for h in raw.header]
    first = _find(keys, _NAME_FIRST)
    second = _find(keys, _NAME_SECOND)
    single = _find(keys, _NAME_SINGLE)
    reason_ix, remark_ix = _find(keys, _REASON), _find(keys, _REMARK)
    type_ix, grade_ix = _find(keys, _TYPE), _find(keys, _GRADE)
    age_ix, unit_ix, cond_ix = _find(keys, _AGE), _find(keys, _AGE_UNIT), _find(keys, _AGE_COND)
    group_ix, subgroup_ix = _find(keys, _EFF_GROUP), _find(keys, _EFF_SUBGROUP)
    product_ix = _find(keys, _PRODUCT)
    reports: dict[str, TableReport] = {}
    groups: dict[tuple[str, str], list[tuple[str, int]]] = {}

    for index, row in enumerate(raw.iter_rows()):
        line = index + 2
        row_table = table
        if table == "mixed":
            row_table = _type_of_value(" ".join(_cell(row, type_ix))) or ""
            if not row_table:
                continue
        rep = reports.setdefault(row_table, TableReport(row_table, raw.path.name))
        rep.rows += 1
        reason = " ".join(_cell(row, reason_ix[:1]))
        remark = " ".join(_cell(row, remark_ix[:1]))
        provenance = {"source": SOURCE_ID, "file": raw.path.name, "row": line}
        products = [p for p in _cell(row, product_ix) if not p.startswith("P_") and not _looks_like_code(p)][
            :1
        ]

        if row_table == "combination":
            names_a = _cell(row, first if second else single)
            names_b = _cell(row, second)
            a, b = matcher.match_any(names_a), matcher.match_any(names_b)
            sub_a = None if a else matcher.match_substance(names_a)
            sub_b = None if b else matcher.match_substance(names_b)
            for names, found in ((names_a, a or sub_a), (names_b, b or sub_b)):
                if not found and names:
                    unmatched.add(names)
            note = _note(reason, remark, row_table)
            attrs = {"severity": "major", "note": note, "dur_table": row_table, "provenance": provenance}
            if a and b and a != b:
                rep.matched += 1
                for src, dst in ((a, b), (b, a)):
                    if sink.add(src, dst, "interacts_with", attrs, products):
                        rep.edges += 1
            elif (a and sub_b) or (b and sub_a):
                rep.matched += 1
                src, dst = (a, sub_b) if a else (b, sub_a)
                if sink.add(src, dst, "interacts_with", attrs, products):
                    rep.edges += 1
            continue

        names = _cell(row, single or first)
        drug = matcher.match_any(names)
        if not drug:
            if names:
                unmatched.add(names)
            continue
        rep.matched += 1
        if row_table in _EDGELESS:
            continue
        if row_table == "efficacy_group":
            group = " ".join(_cell(row, group_ix[:1]))
            subgroup = " ".join(_cell(row, subgroup_ix[:1]))
            groups.setdefault((group, subgroup), []).append((drug, line))
            continue
        attrs: dict = {"dur_table": row_table, "provenance": provenance}
        if row_table == "pregnancy":
            dst = "pregnancy"
            grade = " ".join(_cell(row, grade_ix[:1]))
            attrs.update(
                level="contraindicated",
                note=_note(reason, remark, row_table, f"임부금기 {grade}등급" if grade else ""),
            )
            if grade:
                attrs["grade"] = grade
        elif row_table == "age":
            dst, phrase = _age_population(
                " ".join(_cell(row, age_ix[:1])),
                " ".join(_cell(row, unit_ix[:1])),
                " ".join(_cell(row, cond_ix[:1])),
                reason,
            )
            if drug in matcher.children_dosed and dst in ("children", "infants"):
                # The KB gives this drug a children's dose, so the DUR entry must concern particular
                # products or forms (e.g. an extended-release tablet): a caution, not a blanket ban.
                attrs.update(
                    level="caution",
                    scope="some_products",
                    note=_note(
                        reason, remark, row_table, f"{phrase}(일부 제품·제형에 해당하는 DUR 연령 금기)"
                    ),
                )
            else:
                attrs.update(level="contraindicated", note=_note(reason, remark, row_table, phrase))
            if phrase:
                attrs["age"] = phrase
        elif row_table == "elderly":
            dst = "elderly"
            attrs.update(level="caution", note=_note(reason, remark, row_table))
        elif row_table == "lactation":
            dst = "lactation"
            attrs.update(level="caution", note=_note(reason, remark, row_table))
        else:
            continue
        if sink.add(drug, dst, "contraindicated_in", attrs, products):
            rep.edges += 1

    for (group, subgroup), members in groups.items():
        rep = reports["efficacy_group"]
        drugs = list(dict.fromkeys(d for d, _ in members))
        lines = {d: line for d, line in reversed(members)}
        label = group or subgroup
        note = (
            f"같은 효능군({label})이라 함께 쓰면 효과는 늘지 않고 부작용 위험이 커질 수 있어요(DUR 효능군중복)."
            if label
            else _DEFAULT_NOTES["efficacy_group"]
        )
        for a in drugs:
            for b in drugs:
                if a != b:
                    provenance = {"source": SOURCE_ID, "file": raw.path.name, "row": lines[a]}
                    attrs = {
                        "severity": "moderate",
                        "note": note,
                        "dur_table": "efficacy_group",
                        "group": label,
                        "provenance": provenance,
                    }
                    if sink.add(a, b, "interacts_with", attrs):
                        rep.edges += 1
    return list(reports.values())


# ---------------------------------------------------------------------------------------------------
# Folder import
# ---------------------------------------------------------------------------------------------------


def default_output() -> Path:
    from kmed.paths import default_processed_dir

    return default_processed_dir() / "kg_edges" / "dur.jsonl"


def _files(folder: Path) -> Iterator[Path]:
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.name.startswith((".", "~$")):
            yield path


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
    if not folder.exists():
        raise KmedError(
            f"DUR 폴더를 찾을 수 없어요: {folder}",
            "공공데이터포털에서 내려받은 DUR 파일(CSV/XLSX)을 한 폴더에 모으고 그 경로를 넘겨 주세요. 예: kmed kg import-dur ~/Downloads/dur",
        )
    if not folder.is_dir():
        raise KmedError(
            f"'{folder}'은(는) 폴더가 아니에요.", "DUR 파일들이 들어 있는 폴더의 경로를 넘겨 주세요."
        )
    if kb is None:
        from kmed.data.kb import load_kb_or_fail

        kb = load_kb_or_fail()
    matcher = DrugMatcher(kb)
    out = Path(out_path) if out_path is not None else default_output()
    report = ImportReport(folder=str(folder), output=str(out) if write else None, kb_drugs=matcher.drug_count)
    sink = _EdgeSink()

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
            file_sink, file_unmatched = _EdgeSink(), _Unmatched()
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
        for edge in file_sink.edges.values():
            attrs = {k: v for k, v in edge.items() if k not in ("src", "dst", "type", "products")}
            sink.add(edge["src"], edge["dst"], edge["type"], attrs, edge.get("products", ()))

    if recognised == 0:
        if errors and len(errors) == len(candidates):
            first = errors[0][1]
            raise KmedError(first.message, first.fix)
        seen = ", ".join(p.name for p in candidates[:8]) or "(CSV/XLSX 파일 없음)"
        unreadable = f" 읽지 못한 파일: {', '.join(p.name for p, _ in errors)}." if errors else ""
        raise KmedError(
            f"'{folder}'에서 DUR 표로 알아볼 수 있는 파일을 찾지 못했어요. 살펴본 파일: {seen}.{unreadable}",
            "공공데이터포털/한국의약품안전관리원에서 받은 DUR 성분 파일(병용금기, 임부금기, 연령금기, 노인주의, "
            "수유부주의, 용량주의, 효능군중복)을 원래 머리글(성분명, 성분코드, 금기사유 등) 그대로 CSV나 XLSX로 넣어 주세요.",
        )

    order = list(TABLES)
    report.tables.sort(key=lambda t: (order.index(t.table) if t.table in order else len(order), t.file))
    if write:
        report.edges_written = write_edges(sink.edges.values(), out)
    else:
        report.edges_written = len(sink.edges)
    return report


def write_edges(edges: Iterable[dict], out: Path) -> int:
    """Write JSON lines to a temp file next to ``out`` and rename it into place (atomic)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            for edge in edges:
                handle.write(json.dumps(edge, ensure_ascii=False) + "\n")
                count += 1
        os.replace(tmp_name, out)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return count
