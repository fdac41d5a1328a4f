"""Compile the curated KB into a typed networkx ``MultiDiGraph`` and query it.

    kmed build kg        # builds and counts the graph; the index (kmed build index) stores it as kg.json

Nodes carry ``type`` (condition, symptom, drug, department, test, topic, red_flag, population,
substance, factor) and ``name``. Every edge carries ``type`` (one of ``EDGE_TYPES``) and
``provenance``: the KB file, the entry that stated it, and that entry's source ids.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

import networkx as nx

from kmed.data.kb import KnowledgeBase
from kmed.data.kb_schema import POPULATIONS, SUBSTANCES

EDGE_TYPES = (
    "has_symptom",
    "treated_with",
    "contraindicated_in",
    "interacts_with",
    "visit_department",
    "diagnosed_by",
    "complication_of",
    "risk_factor",
    "is_a",
    "red_flag",
    "co_occurs",
)
NODE_TYPE_BY_PREFIX = {
    "cond.": "condition",
    "sym.": "symptom",
    "drug.": "drug",
    "dept.": "department",
    "test.": "test",
    "topic.": "topic",
    "rf.": "red_flag",
}


def node_type(node_id: str) -> str:
    for prefix, kind in NODE_TYPE_BY_PREFIX.items():
        if node_id.startswith(prefix):
            return kind
    if node_id in POPULATIONS:
        return "population"
    if node_id in SUBSTANCES:
        return "substance"
    return "factor"


def factor_id(phrase: str) -> str:
    return "factor." + phrase.strip().replace(" ", "_")


def build_graph(kb: KnowledgeBase) -> nx.MultiDiGraph:
    graph = nx.MultiDiGraph()
    for entry in kb.entities():
        graph.add_node(entry.id, type=node_type(entry.id), name=entry.name)
    for c in kb.conditions.values():
        urgency = c.urgency
        graph.nodes[c.id].update(urgency=urgency.level if urgency else "routine",
                                 urgency_sources=list(urgency.sources) if urgency else [],
                                 urgency_reason=urgency.reason if urgency else "")
    for rule in kb.red_flags.values():
        graph.add_node(rule.id, type="red_flag", name=rule.name, level=rule.level)

    def add(src: str, dst: str, edge_type: str, entry, **attrs) -> None:
        for node in (src, dst):
            if node not in graph:
                graph.add_node(node, type=node_type(node), name=_name(kb, node))
        provenance = {"file": kb.origin.get(entry.id, ""), "entry": entry.id, "sources": entry.source_ids()}
        graph.add_edge(src, dst, key=edge_type, type=edge_type, provenance=provenance, **attrs)

    for c in kb.conditions.values():
        for sym in c.symptoms.typical:
            add(c.id, sym, "has_symptom", c, kind="typical")
        for sym in c.symptoms.red_flag:
            add(c.id, sym, "has_symptom", c, kind="red_flag")
            add(c.id, sym, "red_flag", c)
        for drug in c.drugs:
            add(c.id, drug, "treated_with", c)
        for dept in c.departments:
            add(c.id, dept, "visit_department", c)
        for test in c.tests:
            add(c.id, test, "diagnosed_by", c)
        for comp in c.complications:
            add(comp, c.id, "complication_of", c)
        for factor in c.risk_factors:
            add(factor if factor.startswith("cond.") else factor_id(factor), c.id, "risk_factor", c)
        for parent in c.is_a:
            add(c.id, parent, "is_a", c)
    for s in kb.symptoms.values():
        for dept in s.departments:
            add(s.id, dept, "visit_department", s)
    for d in kb.drugs.values():
        for use in d.uses:
            if not graph.has_edge(use, d.id, key="treated_with"):
                add(use, d.id, "treated_with", d)
        for ci in d.contraindications:
            add(d.id, ci.population, "contraindicated_in", d, level=ci.level, note=ci.note)
        for ix in d.interactions:
            add(d.id, ix.with_, "interacts_with", d, severity=ix.severity, note=ix.note)
    for r in kb.red_flags.values():
        for cond in r.conditions:
            add(r.id, cond, "red_flag", r)
        for dept in r.departments:
            add(r.id, dept, "visit_department", r)
        for pattern in r.patterns:
            for sym in dict.fromkeys([*pattern.all_of, *pattern.any_of]):
                if not graph.has_edge(r.id, sym, key="red_flag"):
                    add(r.id, sym, "red_flag", r)
    return graph


def merge_extra_edges(graph: nx.MultiDiGraph, folder) -> int:
    """Add edges from ``*.jsonl`` files (DUR import, AI Hub co-occurrence) whose ends exist in the graph.

    Each line: {"src", "dst", "type", "provenance", …attrs}. Lines naming unknown nodes or edge types
    are skipped and counted, so user data never adds dangling nodes.
    """
    import json
    from pathlib import Path

    added = 0
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    for path in sorted(folder.glob("*.jsonl")):
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                try:
                    edge = json.loads(line)
                    src, dst, edge_type = edge.pop("src"), edge.pop("dst"), edge.pop("type")
                except (ValueError, KeyError, AttributeError):
                    continue
                if edge_type not in EDGE_TYPES or src not in graph:
                    continue
                if dst not in graph:
                    if node_type(dst) not in ("population", "substance"):
                        continue
                    graph.add_node(dst, type=node_type(dst), name=dst)
                edge.setdefault("provenance", {"file": path.name})
                graph.add_edge(src, dst, key=f"{edge_type}:{path.stem}", type=edge_type, **edge)
                added += 1
    return added


def _name(kb: KnowledgeBase, node_id: str) -> str:
    if node_id.startswith("factor."):
        return node_id[len("factor.") :].replace("_", " ")
    return kb.name_of(node_id)


@dataclass(frozen=True)
class RankedCondition:
    id: str
    name: str
    score: float
    matched: tuple[str, ...]


class GraphQueries:
    """Read-only questions the agent and retriever ask of the graph."""

    def __init__(self, graph: nx.MultiDiGraph):
        self.graph = graph

    def name(self, node_id: str) -> str:
        return self.graph.nodes[node_id].get("name", node_id) if node_id in self.graph else node_id

    def _out(self, node_id: str, edge_type: str) -> list[tuple[str, dict]]:
        if node_id not in self.graph:
            return []
        return [(dst, data) for _, dst, data in self.graph.out_edges(node_id, data=True) if data["type"] == edge_type]

    def _in(self, node_id: str, edge_type: str) -> list[tuple[str, dict]]:
        if node_id not in self.graph:
            return []
        return [(src, data) for src, _, data in self.graph.in_edges(node_id, data=True) if data["type"] == edge_type]

    def candidate_conditions(self, symptom_ids: list[str], limit: int = 10) -> list[RankedCondition]:
        """Conditions ranked by how many of the symptoms they explain, rarer symptoms weighing more."""
        n_conditions = max(1, sum(1 for _, d in self.graph.nodes(data=True) if d.get("type") == "condition"))
        scores: dict[str, float] = defaultdict(float)
        matched: dict[str, list[str]] = defaultdict(list)
        for sym in dict.fromkeys(symptom_ids):
            holders = [src for src, _ in self._in(sym, "has_symptom")]
            if not holders:
                continue
            weight = math.log(1 + n_conditions / len(set(holders)))
            for cond in set(holders):
                scores[cond] += weight
                matched[cond].append(sym)
        ranked = sorted(scores, key=lambda c: (-scores[c], -len(matched[c]), c))
        return [RankedCondition(c, self.name(c), round(scores[c], 4), tuple(matched[c])) for c in ranked[:limit]]

    def departments_of(self, node_id: str) -> list[str]:
        return [dst for dst, _ in self._out(node_id, "visit_department")]

    def red_flag_symptoms_of(self, condition_id: str) -> list[str]:
        return [dst for dst, _ in self._out(condition_id, "red_flag")]

    def red_flag_rules_for(self, condition_id: str) -> list[str]:
        return [src for src, _ in self._in(condition_id, "red_flag") if src.startswith("rf.")]

    def drugs_for(self, node_id: str) -> list[str]:
        return [dst for dst, _ in self._out(node_id, "treated_with")]

    def interactions_of(self, drug_id: str) -> list[tuple[str, dict]]:
        seen = {dst: data for dst, data in self._out(drug_id, "interacts_with")}
        for src, data in self._in(drug_id, "interacts_with"):
            seen.setdefault(src, data)
        return list(seen.items())

    def contraindications_of(self, drug_id: str) -> list[tuple[str, dict]]:
        return self._out(drug_id, "contraindicated_in")

    def facts_about(self, node_id: str, limit: int = 12) -> list[tuple[str, str, str, dict]]:
        """(src, edge_type, dst, data) triples touching a node, outgoing first."""
        if node_id not in self.graph:
            return []
        out = [(node_id, d["type"], dst, d) for _, dst, d in self.graph.out_edges(node_id, data=True)]
        inc = [(src, d["type"], node_id, d) for src, _, d in self.graph.in_edges(node_id, data=True)]
        return (out + inc)[:limit]


def graph_to_json(graph: nx.MultiDiGraph) -> dict:
    return nx.node_link_data(graph, edges="edges")


def graph_from_json(data: dict) -> nx.MultiDiGraph:
    return nx.node_link_graph(data, directed=True, multigraph=True, edges="edges")
