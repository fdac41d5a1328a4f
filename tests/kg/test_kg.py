"""Knowledge graph: typed nodes and edges with provenance, and the queries the agent relies on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kmed.data.kb import load_kb_or_fail
from kmed.kg.graph import (
    EDGE_TYPES,
    GraphQueries,
    build_graph,
    graph_from_json,
    graph_to_json,
    merge_extra_edges,
)

MINI = Path(__file__).parents[1] / "fixtures" / "kb_mini"


@pytest.fixture(scope="module")
def mini_graph():
    return build_graph(load_kb_or_fail(MINI))


def test_every_edge_is_typed_and_has_provenance(mini_graph, kb):
    for graph in (mini_graph, build_graph(kb)):
        for _, _, data in graph.edges(data=True):
            assert data["type"] in EDGE_TYPES
            assert data["provenance"]["entry"] and data["provenance"]["sources"]


def test_shipped_graph_meets_its_floors(kb):
    graph = build_graph(kb)
    types = {d["type"] for _, _, d in graph.edges(data=True)}
    assert {"has_symptom", "treated_with", "contraindicated_in", "interacts_with", "visit_department",
            "diagnosed_by", "red_flag"} <= types
    assert graph.number_of_edges() >= 3000


def test_symptoms_rank_candidate_conditions(mini_graph):
    ranked = GraphQueries(mini_graph).candidate_conditions(["sym.heartburn", "sym.acid_regurgitation"])
    assert ranked[0].id == "cond.gerd" and set(ranked[0].matched) == {"sym.heartburn", "sym.acid_regurgitation"}
    assert GraphQueries(mini_graph).candidate_conditions(["sym.unknown"]) == []


def test_rarer_symptoms_weigh_more(kb):
    q = GraphQueries(build_graph(kb))
    ranked = q.candidate_conditions(["sym.fever", "sym.neck_stiffness", "sym.headache"], limit=5)
    assert ranked and "sym.neck_stiffness" in ranked[0].matched


def test_condition_departments_and_red_flags(mini_graph):
    q = GraphQueries(mini_graph)
    assert "dept.gastroenterology" in q.departments_of("cond.gerd")
    assert {"sym.hematemesis", "sym.dysphagia"} <= set(q.red_flag_symptoms_of("cond.gerd"))


def test_drug_interactions_and_contraindications(mini_graph):
    q = GraphQueries(mini_graph)
    assert "alcohol" in dict(q.interactions_of("drug.acetaminophen"))
    # interactions are found from either side
    assert "drug.esomeprazole" in dict(q.interactions_of("drug.clopidogrel"))
    assert "drug.clopidogrel" in dict(q.interactions_of("drug.esomeprazole"))
    cis = dict(q.contraindications_of("drug.acetaminophen"))
    assert cis["liver_disease"]["level"] == "caution"


def test_json_round_trip(mini_graph):
    clone = graph_from_json(json.loads(json.dumps(graph_to_json(mini_graph), ensure_ascii=False)))
    assert clone.number_of_nodes() == mini_graph.number_of_nodes()
    assert clone.number_of_edges() == mini_graph.number_of_edges()


def test_extra_edges_merge_only_onto_known_nodes(mini_graph, tmp_path):
    graph = mini_graph.copy()
    lines = [
        {"src": "drug.acetaminophen", "dst": "pregnancy", "type": "contraindicated_in", "level": "caution",
         "provenance": {"source": "mfds_dur", "file": "x.csv", "row": 1}},
        {"src": "drug.nowhere", "dst": "pregnancy", "type": "contraindicated_in", "provenance": {}},
        {"src": "drug.acetaminophen", "dst": "drug.clopidogrel", "type": "made_up_type", "provenance": {}},
        "not json",
    ]
    (tmp_path / "dur.jsonl").write_text("\n".join(json.dumps(x) if isinstance(x, dict) else x for x in lines), encoding="utf-8")
    before = graph.number_of_edges()
    assert merge_extra_edges(graph, tmp_path) == 1
    assert graph.number_of_edges() == before + 1 and "drug.nowhere" not in graph


def test_drug_facts_keep_major_interactions_when_cut(kb):
    """kg_facts sorts a drug's interactions by severity before cutting, so major ones reach the answer."""
    from kmed.kg.linker import Mention
    from kmed.retrieval.kg_facts import MAX_DRUG_FACTS, KGFactRetriever, by_severity

    ranked = by_severity([("a", {"severity": "minor"}), ("b", {"severity": "major"}), ("c", {"severity": "moderate"}),
                          ("d", {}), ("e", {"severity": "major"})])
    assert [k for k, _ in ranked] == ["b", "e", "c", "a", "d"]
    q = GraphQueries(build_graph(kb))
    all_ix = q.interactions_of("drug.warfarin")
    majors = {other for other, data in all_ix if data.get("severity") == "major"}
    assert len(all_ix) > MAX_DRUG_FACTS and len(majors) >= MAX_DRUG_FACTS
    passages = KGFactRetriever(q).retrieve([Mention("drug.warfarin", "와파린", "drug", 0, 3, "와파린")], k=50)
    shown = [p.id.split(":ix:")[1] for p in passages if ":ix:" in p.id]
    assert len(shown) == MAX_DRUG_FACTS and set(shown) <= majors
