"""DUR rows to KG edges: one handler per table, looked up in ``HANDLERS`` by the table's key.

Edges (``kmed.kg.graph.merge_extra_edges`` adds them to the graph):

- 병용금기: ``drug → drug``, ``interacts_with``, severity ``major`` (both directions);
- 효능군중복: ``drug → drug`` for KB drugs in the same group, ``interacts_with``, severity ``moderate``;
- 임부금기: ``drug → pregnancy``, ``contraindicated_in``, level ``contraindicated`` (with its grade);
- 특정연령대금기: ``drug → children | infants | elderly``, ``contraindicated_in``, level ``contraindicated``;
- 노인주의 / 수유부주의: ``drug → elderly | lactation``, ``contraindicated_in``, level ``caution``.

용량주의 and 투여기간주의 rows are read, matched and reported, but give no edge: the graph has no edge
type for a dose or duration limit.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from kmed.data.dur import vocab as V
from kmed.data.dur.matcher import DrugMatcher, looks_like_code
from kmed.data.dur.readers import RawTable
from kmed.data.dur.report import EdgeSink, TableReport, Unmatched
from kmed.populations import age_band_population

_DEFAULT_NOTES = {
    "combination": "함께 쓰면 안 되는 병용금기 성분 조합이에요(DUR).",
    "pregnancy": "임신 중에 쓰지 않아야 하는 임부금기 성분이에요(DUR).",
    "age": "이 연령대에는 쓰지 않아야 하는 특정연령대 금기 성분이에요(DUR).",
    "elderly": "노인에게 부작용 위험이 커서 주의가 필요한 성분이에요(DUR 노인주의).",
    "lactation": "수유 중인 아기에게 부작용 우려가 있어 주의가 필요한 성분이에요(DUR 수유부주의).",
    "efficacy_group": "같은 효능군이라 함께 쓰면 효과는 늘지 않고 부작용 위험이 커질 수 있어요(DUR 효능군중복).",
}


def _values(cells: list[str], indexes: list[int]) -> list[str]:
    return [cells[i].strip() for i in indexes if i < len(cells) and cells[i] and cells[i].strip()]


@dataclass
class Columns:
    """Where each field sits in one file's header: column indexes, in vocabulary order."""

    first: list[int]
    second: list[int]
    single: list[int]
    reason: list[int]
    remark: list[int]
    type: list[int]
    grade: list[int]
    age: list[int]
    age_unit: list[int]
    age_cond: list[int]
    group: list[int]
    subgroup: list[int]
    product: list[int]

    @classmethod
    def of(cls, header: list[str]) -> Columns:
        keys = [V.col(h) for h in header]
        vocabulary = {
            "first": V.NAME_FIRST, "second": V.NAME_SECOND, "single": V.NAME_SINGLE, "reason": V.REASON,
            "remark": V.REMARK, "type": V.TYPE, "grade": V.GRADE, "age": V.AGE, "age_unit": V.AGE_UNIT,
            "age_cond": V.AGE_COND, "group": V.EFF_GROUP, "subgroup": V.EFF_SUBGROUP, "product": V.PRODUCT,
        }  # fmt: skip
        return cls(**{name: V.find_columns(keys, names) for name, names in vocabulary.items()})


@dataclass
class Row:
    """One data row of a file, with the table it belongs to and its line number (the header is line 1)."""

    cells: list[str]
    line: int
    table: str
    file: str
    columns: Columns

    def values(self, indexes: list[int]) -> list[str]:
        return _values(self.cells, indexes)

    def value(self, indexes: list[int]) -> str:
        """The first of the named columns that the file has, or ``""``."""
        return " ".join(self.values(indexes[:1]))

    @property
    def provenance(self) -> dict:
        return {"source": V.SOURCE_ID, "file": self.file, "row": self.line}

    @property
    def products(self) -> list[str]:
        """The row's first readable product name (not a code), for the edge's examples."""
        named = [p for p in self.values(self.columns.product) if not p.startswith("P_") and not looks_like_code(p)]
        return named[:1]

    def note(self, extra: str = "") -> str:
        """The row's reason (or the table's default sentence), after ``extra``, with its remark."""
        base = self.value(self.columns.reason).strip() or _DEFAULT_NOTES.get(self.table, "")
        note = f"{extra}: {base}" if extra else base
        remark = self.value(self.columns.remark).strip()
        if remark and remark not in note:
            note = f"{note} (비고: {remark})"
        return note

    def attrs(self, **more) -> dict:
        """Edge attributes of a ``contraindicated_in`` edge from this row."""
        return {"dur_table": self.table, "provenance": self.provenance, **more}


@dataclass
class Job:
    """One file being mapped: the matcher, where edges and unmatched names go, a report per table."""

    matcher: DrugMatcher
    sink: EdgeSink
    unmatched: Unmatched
    file: str
    reports: dict[str, TableReport] = field(default_factory=dict)
    groups: dict[tuple[str, str], list[tuple[str, int]]] = field(default_factory=dict)

    def report(self, table: str) -> TableReport:
        return self.reports.setdefault(table, TableReport(table, self.file))

    def drug(self, row: Row) -> str | None:
        """The KB drug of a one-ingredient row (counted as matched), or None (its name counted as unmatched)."""
        names = row.values(row.columns.single or row.columns.first)
        drug = self.matcher.match_any(names)
        if not drug:
            if names:
                self.unmatched.add(names)
            return None
        self.report(row.table).matched += 1
        return drug

    def edge(self, table: str, src: str, dst: str, edge_type: str, attrs: dict, products: Iterable[str] = ()) -> None:
        if self.sink.add(src, dst, edge_type, attrs, products):
            self.report(table).edges += 1


Handler = Callable[[Row, Job], None]


def age_population(age: str, unit: str, cond: str, text: str) -> tuple[str, str]:
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
    return age_band_population(months, upward=cond in ("이상", "초과")), phrase


def _combination(row: Row, job: Job) -> None:
    """Two ingredients (or an ingredient and a substance such as grapefruit): an edge each way."""
    columns, matcher = row.columns, job.matcher
    names_a = row.values(columns.first if columns.second else columns.single)
    names_b = row.values(columns.second)
    a, b = matcher.match_any(names_a), matcher.match_any(names_b)
    sub_a = None if a else matcher.match_substance(names_a)
    sub_b = None if b else matcher.match_substance(names_b)
    for names, found in ((names_a, a or sub_a), (names_b, b or sub_b)):
        if not found and names:
            job.unmatched.add(names)
    attrs = {"severity": "major", "note": row.note(), "dur_table": row.table, "provenance": row.provenance}
    if a and b and a != b:
        job.report(row.table).matched += 1
        for src, dst in ((a, b), (b, a)):
            job.edge(row.table, src, dst, "interacts_with", attrs, row.products)
    elif (a and sub_b) or (b and sub_a):
        job.report(row.table).matched += 1
        src, dst = (a, sub_b) if a else (b, sub_a)
        job.edge(row.table, src, dst, "interacts_with", attrs, row.products)


def _pregnancy(row: Row, job: Job) -> None:
    drug = job.drug(row)
    if not drug:
        return
    grade = row.value(row.columns.grade)
    attrs = row.attrs(level="contraindicated", note=row.note(f"임부금기 {grade}등급" if grade else ""))
    if grade:
        attrs["grade"] = grade
    job.edge(row.table, drug, "pregnancy", "contraindicated_in", attrs, row.products)


def _age(row: Row, job: Job) -> None:
    drug = job.drug(row)
    if not drug:
        return
    columns = row.columns
    reason = row.value(columns.reason)
    dst, phrase = age_population(row.value(columns.age), row.value(columns.age_unit), row.value(columns.age_cond), reason)
    if drug in job.matcher.children_dosed and dst in ("children", "infants"):
        # The KB gives this drug a children's dose, so the DUR entry must concern particular
        # products or forms (e.g. an extended-release tablet): a caution, not a blanket ban.
        note = row.note(f"{phrase}(일부 제품·제형에 해당하는 DUR 연령 금기)")
        attrs = row.attrs(level="caution", scope="some_products", note=note)
    else:
        attrs = row.attrs(level="contraindicated", note=row.note(phrase))
    if phrase:
        attrs["age"] = phrase
    job.edge(row.table, drug, dst, "contraindicated_in", attrs, row.products)


def _caution(population: str) -> Handler:
    """노인주의 / 수유부주의: a ``caution`` edge from the drug to ``population``."""

    def handler(row: Row, job: Job) -> None:
        drug = job.drug(row)
        if drug:
            attrs = row.attrs(level="caution", note=row.note())
            job.edge(row.table, drug, population, "contraindicated_in", attrs, row.products)

    return handler


def _efficacy_group(row: Row, job: Job) -> None:
    """Drugs are gathered by group here; ``_group_edges`` joins them once the file is read."""
    drug = job.drug(row)
    if drug:
        key = (row.value(row.columns.group), row.value(row.columns.subgroup))
        job.groups.setdefault(key, []).append((drug, row.line))


def _matched_only(row: Row, job: Job) -> None:
    """용량주의 / 투여기간주의: matched and reported, no edge."""
    job.drug(row)


HANDLERS: dict[str, Handler] = {
    "combination": _combination,
    "pregnancy": _pregnancy,
    "age": _age,
    "elderly": _caution("elderly"),
    "lactation": _caution("lactation"),
    "max_dose": _matched_only,
    "duration": _matched_only,
    "efficacy_group": _efficacy_group,
}


def _group_edges(job: Job) -> None:
    """효능군중복: an edge each way between every two KB drugs of one group."""
    for (group, subgroup), members in job.groups.items():
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
                    provenance = {"source": V.SOURCE_ID, "file": job.file, "row": lines[a]}
                    attrs = {
                        "severity": "moderate",
                        "note": note,
                        "dur_table": "efficacy_group",
                        "group": label,
                        "provenance": provenance,
                    }
                    job.edge("efficacy_group", a, b, "interacts_with", attrs)


def map_table(raw: RawTable, table: str, matcher: DrugMatcher, sink: EdgeSink, unmatched: Unmatched) -> list[TableReport]:
    """Map one file's rows; a mixed (DUR유형) file gives one report per table it holds."""
    columns = Columns.of(raw.header)
    job = Job(matcher, sink, unmatched, raw.path.name)
    for index, cells in enumerate(raw.iter_rows()):
        row_table = table
        if table == "mixed":
            row_table = V.type_of_value(" ".join(_values(cells, columns.type))) or ""
            if not row_table:
                continue
        job.report(row_table).rows += 1
        HANDLERS[row_table](Row(cells, index + 2, row_table, raw.path.name, columns), job)
    _group_edges(job)
    return list(job.reports.values())
