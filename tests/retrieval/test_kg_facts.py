"""KG facts (kmed.retrieval.kg_facts.KGFactRetriever): linked mentions pull the graph's edges as passages.

A tiny graph is built here by hand, so each passage can be traced to the edges it was rendered
from. A condition gives its departments and red-flag symptoms, a drug its interactions (either
direction) and contraindications, symptoms the conditions that have them; every passage carries
the provenance of those edges. The last tests run over the graph of the shipped KB.
"""

from __future__ import annotations

import networkx as nx
import pytest

from kmed.kg.graph import GraphQueries, build_graph, node_type
from kmed.kg.linker import Mention
from kmed.retrieval.kg_facts import MAX_DRUG_FACTS, KGFactRetriever

NAMES = {
    "cond.flu": "독감", "cond.cold": "감기", "cond.mi": "심근경색", "cond.rash": "두드러기",
    "sym.fever": "발열", "sym.cough": "기침", "sym.myalgia": "근육통", "sym.chest_pain": "가슴 통증",
    "sym.dyspnea": "호흡곤란", "sym.itch": "가려움",
    "dept.im": "내과", "dept.peds": "소아청소년과", "dept.cardio": "심장내과",
    "drug.warfarin": "와파린", "drug.aspirin": "아스피린", "drug.ibuprofen": "이부프로펜",
    "pregnancy": "임신부", "elderly": "노인",
}
EDGES = [  # (src, dst, type, source id, attributes)
    ("cond.flu", "sym.fever", "has_symptom", "kdca", {}),
    ("cond.flu", "sym.cough", "has_symptom", "kdca", {}),
    ("cond.flu", "sym.myalgia", "has_symptom", "kdca", {}),
    ("cond.cold", "sym.fever", "has_symptom", "kdca", {}),
    ("cond.cold", "sym.cough", "has_symptom", "kdca", {}),
    ("cond.flu", "dept.im", "visit_department", "kdca", {}),
    ("cond.flu", "dept.peds", "visit_department", "kdca", {}),
    ("cond.mi", "sym.chest_pain", "has_symptom", "khi", {}),
    ("cond.mi", "sym.chest_pain", "red_flag", "khi", {}),
    ("cond.mi", "sym.dyspnea", "red_flag", "heart", {}),
    ("cond.mi", "dept.cardio", "visit_department", "khi", {}),
    ("drug.warfarin", "drug.ibuprofen", "interacts_with", "mfds", {"severity": "moderate", "note": "위장 출혈 위험이 있어요."}),
    ("drug.warfarin", "drug.aspirin", "interacts_with", "mfds", {"severity": "major", "note": "출혈 위험이 커져요."}),
    ("drug.warfarin", "elderly", "contraindicated_in", "mfds", {"level": "caution", "note": "출혈에 주의해요."}),
    ("drug.warfarin", "pregnancy", "contraindicated_in", "mfds", {"level": "contraindicated", "note": "태아에 해로울 수 있어요."}),
]
SOURCE_NAMES = {"kdca": "질병관리청 국가건강정보포털", "khi": "서울아산병원 질환백과"}


def tiny_graph(reverse: bool = False) -> nx.MultiDiGraph:
    graph = nx.MultiDiGraph()
    for node, name in NAMES.items():
        graph.add_node(node, type=node_type(node), name=name)
    for src, dst, edge_type, source, attrs in (reversed(EDGES) if reverse else EDGES):
        graph.add_edge(src, dst, key=edge_type, type=edge_type,
                       provenance={"file": f"kb/{source}.yaml", "entry": src, "sources": [source]}, **attrs)
    return graph


@pytest.fixture(scope="module")
def facts():
    return KGFactRetriever(GraphQueries(tiny_graph()), SOURCE_NAMES)


def mention(node: str, kind: str, negated: bool = False) -> Mention:
    name = NAMES.get(node, node)
    return Mention(node, name, kind, 0, len(name), name, negated)


def rows(passages) -> list[tuple[str, str, str]]:
    return [(p.id, p.metadata["section"], p.text) for p in passages]


def test_a_condition_gives_its_departments_and_red_flags(facts):
    assert rows(facts.retrieve([mention("cond.mi", "disease")])) == [
        ("kg:cond.mi:departments", "kg_departments", "심근경색은 심장내과에서 진료해요."),
        ("kg:cond.mi:red_flags", "kg_red_flags", "심근경색에서 가슴 통증, 호흡곤란이 나타나면 빨리 진료가 필요한 위험 신호예요."),
    ]


def test_department_facts_list_every_department_edge_in_order(facts):
    [passage] = facts.retrieve([mention("cond.flu", "disease")])
    assert passage.text == "독감은 내과, 소아청소년과에서 진료해요."
    assert passage.metadata["departments"] == ["dept.im", "dept.peds"]
    assert passage.metadata["entity_ids"] == ["cond.flu"] and passage.metadata["entity_names"] == ["독감"]
    assert passage.metadata["entity_type"] == "kg_fact" and passage.title == "독감 · 진료과"


def test_each_passage_carries_the_provenance_of_its_own_edges(facts):
    by_section = {p.metadata["section"]: p.metadata for p in facts.retrieve([mention("cond.mi", "disease")])}
    assert by_section["kg_departments"]["source_ids"] == ["khi"]
    assert by_section["kg_departments"]["source"] == "서울아산병원 질환백과"  # the name given for the id
    assert by_section["kg_departments"]["origin"] == "kb/khi.yaml"
    assert by_section["kg_red_flags"]["source_ids"] == ["heart", "khi"]
    assert by_section["kg_red_flags"]["source"] == "heart, 서울아산병원 질환백과"  # an unnamed id stays as it is
    assert by_section["kg_red_flags"]["origin"] == "kb/heart.yaml, kb/khi.yaml"


def test_a_condition_with_only_symptom_edges_gives_no_condition_facts(facts):
    assert facts.retrieve([mention("cond.cold", "disease")]) == []


def test_a_drug_gives_interactions_most_severe_first_then_contraindications_strictest_first(facts):
    assert rows(facts.retrieve([mention("drug.warfarin", "drug")])) == [
        ("kg:drug.warfarin:ix:drug.aspirin", "kg_interactions", "와파린은 아스피린과 함께 쓸 때 주의가 필요해요. 출혈 위험이 커져요."),
        ("kg:drug.warfarin:ix:drug.ibuprofen", "kg_interactions",
         "와파린은 이부프로펜과 함께 쓸 때 주의가 필요해요. 위장 출혈 위험이 있어요."),
        ("kg:drug.warfarin:ci:pregnancy", "kg_contraindications", "임신부에게 와파린은 금기예요. 태아에 해로울 수 있어요."),
        ("kg:drug.warfarin:ci:elderly", "kg_contraindications", "노인에게 와파린은 주의가 필요해요. 출혈에 주의해요."),
    ]


def test_an_interaction_is_found_from_either_drug(facts):
    assert rows(facts.retrieve([mention("drug.aspirin", "drug")])) == [
        ("kg:drug.aspirin:ix:drug.warfarin", "kg_interactions", "아스피린은 와파린과 함께 쓸 때 주의가 필요해요. 출혈 위험이 커져요."),
    ]


def test_symptoms_rank_the_conditions_that_have_them(facts):
    passages = facts.retrieve([mention("sym.fever", "symptom"), mention("sym.cough", "symptom"),
                               mention("sym.myalgia", "symptom")])
    assert rows(passages) == [
        ("kg:cond.flu:candidate", "kg_candidate",
         "발열, 기침, 근육통 증상이 있을 때 생각해 볼 수 있는 질환으로 독감이 있어요. 독감은 내과, 소아청소년과에서 진료해요."),
        ("kg:cond.cold:candidate", "kg_candidate", "발열, 기침 증상이 있을 때 생각해 볼 수 있는 질환으로 감기가 있어요."),
    ]
    assert passages[1].metadata["departments"] == [] and passages[1].metadata["source_ids"] == ["kdca"]


def test_a_red_flag_symptom_is_traced_to_both_of_its_edges(facts):
    [passage] = facts.retrieve([mention("sym.chest_pain", "symptom")])
    assert passage.id == "kg:cond.mi:candidate"
    assert passage.metadata["source_ids"] == ["khi"]  # has_symptom and red_flag, both stated by khi


@pytest.mark.parametrize(
    "mentions",
    [
        [mention("cond.unknown", "disease")],
        [mention("drug.unknown", "drug")],
        [mention("sym.unknown", "symptom")],
        [mention("sym.itch", "symptom")],  # in the graph, but no condition has it
        [mention("cond.flu", "disease", negated=True)],  # "독감은 아니고요"
        [mention("drug.warfarin", "drug", negated=True), mention("sym.fever", "symptom", negated=True)],
        [mention("dept.im", "department"), mention("pregnancy", "population")],  # kinds with no facts
        [],
    ],
)
def test_unknown_negated_or_factless_mentions_give_nothing(facts, mentions):
    assert facts.retrieve(mentions) == []


def test_mentions_of_the_same_entity_give_each_passage_once(facts):
    once = facts.retrieve([mention("cond.mi", "disease")])
    twice = facts.retrieve([mention("cond.mi", "disease"), mention("cond.mi", "disease")])
    assert [p.id for p in twice] == [p.id for p in once]


def test_k_cuts_the_list_after_symptom_candidates_come_first(facts):
    mentions = [mention("drug.warfarin", "drug"), mention("cond.mi", "disease"), mention("sym.chest_pain", "symptom")]
    full = facts.retrieve(mentions, k=50)
    assert [p.id for p in full] == ["kg:cond.mi:candidate", "kg:drug.warfarin:ix:drug.aspirin",
                                    "kg:drug.warfarin:ix:drug.ibuprofen", "kg:drug.warfarin:ci:pregnancy",
                                    "kg:drug.warfarin:ci:elderly", "kg:cond.mi:departments", "kg:cond.mi:red_flags"]
    assert [p.id for p in facts.retrieve(mentions, k=3)] == [p.id for p in full[:3]]


def test_the_output_is_deterministic():
    mentions = [mention("sym.fever", "symptom"), mention("sym.cough", "symptom"), mention("cond.mi", "disease"),
                mention("drug.warfarin", "drug")]
    first = [p.to_dict() for p in KGFactRetriever(GraphQueries(tiny_graph()), SOURCE_NAMES).retrieve(mentions)]
    again = [p.to_dict() for p in KGFactRetriever(GraphQueries(tiny_graph()), SOURCE_NAMES).retrieve(mentions)]
    assert first == again and len(first) == 8


def test_candidate_order_does_not_depend_on_edge_order():
    """Ties in score and matched count fall back to the condition id, not to insertion order."""
    mentions = [mention("sym.fever", "symptom"), mention("sym.cough", "symptom")]
    for reverse in (False, True):
        passages = KGFactRetriever(GraphQueries(tiny_graph(reverse))).retrieve(mentions)
        assert [p.id for p in passages] == ["kg:cond.cold:candidate", "kg:cond.flu:candidate"]


def test_without_provenance_the_source_is_the_graph_itself():
    graph = nx.MultiDiGraph()
    graph.add_node("cond.x", type="condition", name="가상질환")
    graph.add_node("dept.im", type="department", name="내과")
    graph.add_edge("cond.x", "dept.im", key="visit_department", type="visit_department")
    [passage] = KGFactRetriever(GraphQueries(graph)).retrieve([mention("cond.x", "disease")])
    assert passage.metadata["source"] == "kmed 지식그래프" and passage.metadata["source_ids"] == []
    assert passage.text == "가상질환은 내과에서 진료해요."


# --- the shipped KB --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def shipped(kb):
    return GraphQueries(build_graph(kb))


def test_every_shipped_condition_lists_exactly_its_department_and_red_flag_edges(shipped):
    retriever = KGFactRetriever(shipped)
    conditions = [n for n, d in shipped.graph.nodes(data=True) if d.get("type") == "condition"]
    assert len(conditions) > 100
    for cid in conditions:
        name = shipped.name(cid)
        by_section = {p.metadata["section"]: p for p in retriever.retrieve([Mention(cid, name, "disease", 0, 1, name)])}
        departments = [shipped.name(d) for d in shipped.departments_of(cid)]
        flags = [shipped.name(s) for s in shipped.red_flag_symptoms_of(cid)]
        if departments:
            assert by_section.pop("kg_departments").text.endswith(f" {', '.join(departments)}에서 진료해요."), cid
        if flags:
            assert f"에서 {', '.join(flags)}" in by_section.pop("kg_red_flags").text, cid
        assert by_section == {}, cid  # nothing but those two kinds of fact


def test_the_common_cold_in_the_shipped_kb(shipped):
    passages = KGFactRetriever(shipped).retrieve([Mention("cond.common_cold", "감기", "disease", 0, 2, "감기")])
    departments = next(p for p in passages if p.metadata["section"] == "kg_departments")
    assert "내과" in departments.text and departments.metadata["departments"] == shipped.departments_of("cond.common_cold")
    assert departments.metadata["source_ids"] and departments.metadata["origin"].endswith(".yaml")


def test_a_shipped_drug_keeps_at_most_the_cap_of_each_kind(shipped):
    passages = KGFactRetriever(shipped).retrieve([Mention("drug.warfarin", "와파린", "drug", 0, 3, "와파린")], k=50)
    sections = [p.metadata["section"] for p in passages]
    assert sections.count("kg_interactions") == MAX_DRUG_FACTS
    assert sections == sorted(sections, key=["kg_interactions", "kg_contraindications"].index)
