"""What a DUR import collects: edges (``EdgeSink``), unmatched names, and the per-table and folder reports."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from kmed.data.dur.matcher import looks_like_code, name_keys
from kmed.data.dur.vocab import TABLES


def display_name(names: list[str]) -> str:
    """The name to show for a row's ingredient: Korean first, never a code when a name is there."""
    readable = [n for n in names if not looks_like_code(n)]
    hangul = [n for n in readable if any("가" <= ch <= "힣" for ch in n)]
    return (hangul or readable or names or [""])[0]


class EdgeSink:
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

    def update(self, other: EdgeSink) -> None:
        """Add another sink's edges, as if its rows had come after this sink's."""
        for edge in other.edges.values():
            attrs = {k: v for k, v in edge.items() if k not in ("src", "dst", "type", "products")}
            self.add(edge["src"], edge["dst"], edge["type"], attrs, edge.get("products", ()))


class Unmatched:
    """Unmatched ingredient names counted by normalised key, shown as first seen."""

    def __init__(self):
        self.counts: Counter = Counter()
        self.shown: dict[str, str] = {}

    def add(self, names: list[str]) -> None:
        shown = display_name(names)
        keys = name_keys(shown)
        key = keys[0] if keys else shown
        self.shown.setdefault(key, shown)
        self.counts[key] += 1

    def update(self, other: Unmatched) -> None:
        for key, count in other.counts.items():
            self.shown.setdefault(key, other.shown[key])
            self.counts[key] += count

    def most_common(self, n: int) -> list[tuple[str, int]]:
        return [(self.shown[k], c) for k, c in self.counts.most_common(n)]

    def __len__(self) -> int:
        return len(self.counts)


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
    unmatched: Unmatched = field(default_factory=Unmatched)
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
