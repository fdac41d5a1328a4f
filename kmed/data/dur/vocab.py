"""The DUR vocabulary: table keys, the column names each table uses, and how a file's table is recognised.

Headers are compared after ``col()``: NFKC, lower case, without spaces, ``_ - ( ) [ ] / . · , :``.
A table is recognised from its columns first and its file name second (노인주의 and 수유부주의 look alike).
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

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


def col(header: str) -> str:
    """A header as it is compared: NFKC, lower case, no spaces or punctuation."""
    text = unicodedata.normalize("NFKC", str(header or "")).lower()
    return re.sub(r"[\s_\-()\[\]/.·,:]+", "", text)


def cols(*names: str) -> tuple[str, ...]:
    return tuple(col(n) for n in names)


# One ingredient per row (or the first ingredient of a pair). Codes are listed too: a repackaging may
# hold the name in its code column, and a real code never matches a drug name, so it costs nothing.
NAME_SINGLE = cols(
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
NAME_FIRST = (
    cols(
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
    + NAME_SINGLE
)
NAME_SECOND = cols(
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
REASON = cols(
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
REMARK = cols("비고", "REMARK", "rmrk_cn")
TYPE = cols("DUR유형", "TYPE_NAME", "유형", "DUR구분")
GRADE = cols("금기등급", "임부금기등급", "등급", "condi_grd_cd", "GRADE")
AGE = cols("특정연령", "연령", "금기연령", "rlvt_age", "AGE_BASE")
AGE_UNIT = cols("특정연령단위", "연령단위", "rlvt_age_unit_nm")
AGE_COND = cols("연령처리조건", "특정연령처리조건", "처리조건", "연령조건", "age_prcs_cnd_nm")
MAX_DOSE = cols(
    "1일최대투여량",
    "1일최대용량",
    "일일최대투여량",
    "1일최대투여기준량",
    "1일 최대 투여량",
    "day_max_admin_cpct_cn",
    "MAX_QTY",
)
DURATION = cols("최대투여기간일수", "최대투여기간", "투여기간", "max_admin_prd_day_cnt", "MAX_DOSAGE_TERM")
EFF_GROUP = cols("효능군", "효능군명", "효능군중복그룹", "eff_group_nm", "EFFECT_NAME", "SERS_NAME")
EFF_SUBGROUP = cols("그룹명", "group_nm")
PRODUCT = cols("제품명", "제품명1", "품목명", "ITEM_NAME", "prdct_nm", "prdct_nm_1", "제형", "FORM_NAME")

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
    col("snctz_cutn_sn"): "elderly",
    col("lacp_sn"): "lactation",
    col("pgw_condi_sn"): "pregnancy",
}
# A column that names its table, checked in this order: the first one a file has wins.
_TABLE_COLUMNS: list[tuple[tuple[str, ...], str]] = [
    (NAME_SECOND, "combination"),
    (MAX_DOSE, "max_dose"),
    (DURATION, "duration"),
    (EFF_GROUP, "efficacy_group"),
    (AGE, "age"),
    (GRADE, "pregnancy"),
]
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


def find_columns(header_keys: list[str], candidates: tuple[str, ...]) -> list[int]:
    """Indexes of the header columns named by ``candidates``, in candidate order."""
    found: list[int] = []
    for cand in candidates:
        for i, key in enumerate(header_keys):
            if key == cand and i not in found:
                found.append(i)
    return found


def detect_table(path: Path, header: list[str]) -> str | None:
    """Which DUR table a file holds, from its columns first and its name second; None if none."""
    keys = [col(h) for h in header]
    if find_columns(keys, TYPE):
        return "mixed"
    if not find_columns(keys, NAME_FIRST) and not find_columns(keys, NAME_SECOND):
        return None
    for columns, table in _TABLE_COLUMNS:
        if find_columns(keys, columns):
            return table
    for key in keys:
        if key in _KEY_COLUMN_HINTS:
            return _KEY_COLUMN_HINTS[key]
    stem = col(path.stem)
    for table, hints in _NAME_HINTS:
        if any(col(h) in stem for h in hints):
            return table
    return None


def type_of_value(value: str) -> str | None:
    for table, words in _TYPE_VALUES:
        if any(w in value for w in words):
            return table
    return None
