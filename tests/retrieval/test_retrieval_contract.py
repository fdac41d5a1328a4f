"""The retrieval contract on the frozen mini KB: one analysed Query, one Retriever protocol, one
embedder factory, typed index artifacts, and Kiwi run once per turn."""

from __future__ import annotations

from dataclasses import FrozenInstanceError
from pathlib import Path

import numpy as np
import pytest

from kmed.data.kb import load_kb_or_fail
from kmed.retrieval.config import DenseConfig, RetrievalConfig

MINI = Path(__file__).parents[1] / "fixtures" / "kb_mini"
FAST = RetrievalConfig(dense=DenseConfig(train_steps=40))


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    from kmed.retrieval.index import build_index

    folder = tmp_path_factory.mktemp("idx") / "default"
    kb = load_kb_or_fail(MINI)
    return folder, build_index(kb, folder, FAST), kb


@pytest.fixture(scope="module")
def assistant(built):
    from kmed import Assistant

    folder, _, _ = built
    return Assistant.load(kb_dir=MINI, index_dir=folder, config=FAST, auto_build=False)


@pytest.fixture
def kiwi_calls(assistant, monkeypatch):
    """Every text the term dictionary's Kiwi analyses from here on."""
    terms = assistant.retriever.a.terms
    calls: list[str] = []
    original = terms.tokenize

    def counting(text):
        calls.append(text)
        return original(text)

    monkeypatch.setattr(terms, "tokenize", counting)
    return calls


def test_each_retriever_satisfies_the_protocol(assistant):
    from kmed.retrieval.passages import Hit
    from kmed.retrieval.query import Retriever

    r = assistant.retriever
    assert list(r.retrievers) == ["bm25", "dense", "kg"]
    query = r.analyse("타이레놀 하루 최대 용량은 얼마예요? 속이 쓰려요")
    for name, retriever in r.retrievers.items():
        assert isinstance(retriever, Retriever) and retriever.name == name
        hits = retriever.search(query, 5)
        assert hits and len(hits) <= 5 and all(isinstance(h, Hit) for h in hits), name
        if name != "kg":  # ranked by their own score; the KG's is 1/rank
            assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True), name


def test_a_mask_restricts_the_index_retrievers(assistant):
    r = assistant.retriever
    query = r.analyse("타이레놀 하루 최대 용량")
    within = np.array([p.metadata.get("entity_type") == "drug" for p in r.a.passages])
    for name in ("bm25", "dense"):
        hits = r.retrievers[name].search(query, 10, within)
        assert hits and all(h.metadata["entity_type"] == "drug" for h in hits), name
    assert r.retrievers["dense"].search(query, 10, np.zeros(len(r.a.passages), dtype=bool)) == []


def test_query_is_analysed_once_and_frozen(assistant, kiwi_calls):
    from kmed.retrieval.bm25 import analyze

    r = assistant.retriever
    query = r.analyse("  역류성식도염이 있는데 속이 쓰려요  ")
    assert query.text == "역류성식도염이 있는데 속이 쓰려요"
    assert kiwi_calls.count(query.text) == 1
    assert {m.id for m in query.mentions} >= {"cond.gerd"}
    assert query.normalised == " ".join([query.text, *query.expansions])
    assert query.text_morphemes == tuple(analyze(r.a.terms, query.text))
    assert query.morphemes[: len(query.text_morphemes)] == query.text_morphemes
    assert "속" in query.nouns and "있" not in query.nouns  # nouns, not stems
    with pytest.raises(FrozenInstanceError):
        query.text = "다른 질문"
    assert not r.analyse("   ") and r.search("   ") == []


def test_searching_a_text_or_its_query_gives_the_same_hits(assistant):
    r = assistant.retriever
    text = "배가 꼬이듯 아프고 설사해요"
    query = r.analyse(text)
    for modes in (("bm25",), ("dense",), ("kg",), ("bm25", "dense", "kg")):
        assert r.search(text, k=8, modes=modes) == r.search(query, k=8, modes=modes)
    assert r.search(query, k=8, filters={"section": "treatment"}) == r.search(text, k=8, filters={"section": "treatment"})


def test_widening_a_query_runs_no_kiwi_over_it_again(assistant, kiwi_calls):
    r = assistant.retriever
    query = r.analyse("속이 쓰려요")
    r.analyser.term_morphemes("설사")  # a dictionary term, analysed once per process
    kiwi_calls.clear()
    wider = query.widen(["설사"], [], r.analyser)
    assert kiwi_calls == [] and wider.text == "속이 쓰려요 설사"
    assert wider.text_morphemes == query.text_morphemes + r.analyser.term_morphemes("설사")
    assert wider.nouns == query.nouns  # the nouns the person wrote, not the added terms


def test_a_turn_analyses_its_message_with_kiwi_exactly_once(assistant, kiwi_calls):
    messages = ["역류성식도염이 있는데 약 먹어도 돼요?", "어제부터 배가 꼬이듯 아프고 설사해요"]
    for message in messages:  # warm: the dictionary terms a query expands to are analysed once per process
        assistant.session().ask(message)
    for message in messages:
        kiwi_calls.clear()
        reply = assistant.session().ask(message)
        assert reply.kind in ("answer", "clarify", "emergency"), reply.kind
        assert kiwi_calls == [message], kiwi_calls


def test_make_embedder_knows_its_specs(built, tmp_path):
    from kmed.errors import ConfigError
    from kmed.retrieval.dense import StaticNumpyEncoder, make_embedder

    for spec in ("kiwi_static", "bge", "", str(tmp_path / "no-such-model")):
        with pytest.raises(ConfigError) as error:
            make_embedder(spec)
        assert "kiwi-static" in error.value.fix and "st:" in error.value.fix and "dense.model" in error.value.fix
    with pytest.raises(ConfigError, match="kiwi-static"):
        make_embedder("kiwi-static")  # trained by a build, so it needs the index's folder
    folder, _, _ = built
    embedder = make_embedder("kiwi-static", folder / "dense" / "embedder", analyzer=str.split)
    assert isinstance(embedder, StaticNumpyEncoder) and embedder.dim > 0


def test_make_embedder_without_sentence_transformers_says_what_to_install(monkeypatch, tmp_path):
    import sys

    from kmed.errors import MissingExtraError
    from kmed.retrieval.dense import make_embedder

    monkeypatch.setitem(sys.modules, "sentence_transformers", None)
    with pytest.raises(MissingExtraError, match="pip install sentence-transformers"):
        make_embedder("st:some/model")
    with pytest.raises(MissingExtraError):
        make_embedder(str(tmp_path))  # an existing folder is a sentence-transformers model


def test_typed_artifacts_round_trip(built):
    import networkx as nx

    from kmed.kg.terms import TermDictionary
    from kmed.retrieval.bm25 import BM25Index
    from kmed.retrieval.dense import FaissIndex, StaticNumpyEncoder
    from kmed.retrieval.index import IndexArtifacts, load_index
    from kmed.retrieval.passages import Passage, read_jsonl

    folder, manifest, kb = built
    a = load_index(folder, kb, FAST)
    assert isinstance(a, IndexArtifacts) and a.folder == folder and a.kb is kb
    assert a.manifest == manifest
    assert isinstance(a.terms, TermDictionary) and isinstance(a.graph, nx.MultiDiGraph)
    assert isinstance(a.bm25, BM25Index) and isinstance(a.embedder, StaticNumpyEncoder) and isinstance(a.faiss, FaissIndex)
    assert all(isinstance(p, Passage) for p in a.passages)
    assert [p.to_dict() for p in a.passages] == [p.to_dict() for p in read_jsonl(folder / "passages.jsonl")]
    assert len(a.passages) == manifest["counts"]["passages"] == a.bm25.num_docs == a.faiss.index.ntotal
    assert a.graph.number_of_edges() == manifest["counts"]["kg_edges"]
    with pytest.raises(FrozenInstanceError):
        a.passages = []
    with pytest.raises(ValueError, match="BM25"):
        IndexArtifacts(folder, manifest, a.terms, a.graph, a.passages[:-1], a.bm25, a.embedder, a.faiss)
    with pytest.raises(ValueError, match="together"):
        IndexArtifacts(folder, manifest, a.terms, a.graph, a.passages, a.bm25, a.embedder, None)
