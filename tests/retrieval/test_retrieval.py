"""Retrieval on the frozen mini KB: BM25 oracle, dense parity, index life cycle, filters, fusion, LangChain."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from kmed.data.kb import load_kb_or_fail
from kmed.retrieval.config import DenseConfig, RetrievalConfig

MINI = Path(__file__).parents[1] / "fixtures" / "kb_mini"
FAST = RetrievalConfig(dense=DenseConfig(train_steps=40))


@pytest.fixture(scope="module")
def built(tmp_path_factory, mini_kb):
    from kmed.retrieval.index import build_index

    folder = tmp_path_factory.mktemp("idx") / "default"
    manifest = build_index(mini_kb, folder, FAST)
    return folder, manifest


@pytest.fixture(scope="module")
def assistant(built):
    from kmed import Assistant

    folder, _ = built
    return Assistant.load(kb_dir=MINI, index_dir=folder, config=FAST, auto_build=False)


def test_bm25_matches_rank_bm25_oracle():
    """bm25s 'robertson' scores equal rank_bm25's BM25Okapi divided by (k1 + 1)."""
    from rank_bm25 import BM25Okapi

    from kmed.retrieval.bm25 import K1, B, BM25Index

    corpus = [["가슴/N", "아프/V", "심장/N"], ["배/N", "아프/V"], ["열/N", "기침/N", "목/N"], ["두통/N"],
              ["설사/N", "복통/N", "배/N", "장염/N"], ["기침/N", "가래/N"], ["어지럽/V", "귀/N"]]
    ours = BM25Index.build(corpus)
    oracle = BM25Okapi(corpus, k1=K1, b=B)
    for query in (["배/N", "아프/V"], ["기침/N"], ["장염/N", "설사/N", "열/N"]):
        np.testing.assert_allclose(ours.scores(query) * (K1 + 1), oracle.get_scores(query), rtol=1e-5)


def test_manifest_records_inputs_versions_counts(built, mini_kb):
    folder, manifest = built
    on_disk = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert on_disk["inputs"]["kb_hash"] == mini_kb.content_hash()
    assert on_disk["counts"]["passages"] > 20 and on_disk["versions"]["bm25s"]
    assert on_disk["dense"]["index_type"] == "flat" and on_disk["dense"]["memory_bytes"] > 0
    for name in ("terms.json", "kg.json", "passages.jsonl", "bm25", "dense/faiss.index", "dense/vectors.npy"):
        assert (folder / name).exists(), name


def test_static_numpy_encoder_matches_sentence_transformers(built):
    from sentence_transformers import SentenceTransformer

    from kmed.retrieval.dense import StaticNumpyEncoder

    folder, _ = built
    texts = ["가슴/N 아프/V", "속쓰림/N 신물/N", "없는단어/N"]
    ours = StaticNumpyEncoder(folder / "dense" / "embedder", analyzer=lambda t: t.split()).encode_analyzed(texts)
    reference = SentenceTransformer(str(folder / "dense" / "embedder"), device="cpu").encode(texts)
    np.testing.assert_allclose(ours, reference, atol=1e-5)


def test_lay_query_finds_the_right_entity(assistant):
    hits = assistant.search("역류성식도염이 있는데 가슴이 쓰리고 신물이 올라와요", k=5)
    assert hits and hits[0].metadata["entity_ids"][0] == "cond.gerd"
    assert " · " in hits[0].title and hits[0].metadata["section"]


def test_each_retriever_alone_and_fused(assistant):
    r = assistant.retriever
    query = "타이레놀 하루 최대 용량"
    for mode in ("bm25", "dense"):
        hits = r.search(query, k=3, modes=(mode,))
        assert hits and hits[0].metadata["entity_ids"][0] == "drug.acetaminophen", mode
    kg_hits = r.search("속이 쓰리고 신물이 올라와요", k=3, modes=("kg",))
    assert kg_hits[0].id.startswith("kg:cond.gerd") and kg_hits[0].metadata["source_ids"]


def test_filters_restrict_before_search(assistant):
    hits = assistant.search("아파요 약", k=10, filters={"entity_type": "drug"})
    assert hits and all(h.metadata["entity_type"] == "drug" for h in hits)
    hits = assistant.search("속쓰림", k=10, filters={"department": "dept.gastroenterology", "section": "treatment"})
    assert hits and all(h.metadata["section"] == "treatment" for h in hits)


def test_unknown_filter_is_a_clear_error(assistant):
    from kmed.errors import ConfigError

    with pytest.raises(ConfigError, match="department"):
        assistant.search("두통", filters={"colour": "red"})


@pytest.mark.parametrize("query", ["", "   ", "가" * 5000, "What is GERD?", "😀😀", "\x00\x07"])
def test_odd_queries_do_not_crash(assistant, query):
    assert isinstance(assistant.search(query, k=3), list)


def test_stale_and_corrupt_index_are_detected(built, mini_kb, tmp_path):
    from kmed.retrieval.index import check_index

    folder, _ = built
    copy = tmp_path / "idx"
    shutil.copytree(folder, copy)
    assert check_index(copy, mini_kb, FAST) is None
    assert "stale" in check_index(copy, mini_kb, RetrievalConfig(max_chars=100, dense=FAST.dense))
    (copy / "manifest.json").write_text("{not json", encoding="utf-8")
    assert "corrupt" in check_index(copy, mini_kb, FAST)
    assert check_index(tmp_path / "nothing", mini_kb, FAST) == "missing"


def test_index_built_under_the_other_kiwi_dictionary_setting_is_stale(built, mini_kb, monkeypatch):
    """KMED_KIWI_MULTI_DICT changes how Kiwi splits text, so the manifest's analyzer records it."""
    from kmed.kg.terms import kiwi_version
    from kmed.retrieval.index import check_index
    from kmed.text_ko import kiwi_multi_dict

    folder, manifest = built
    assert manifest["inputs"]["analyzer"] == kiwi_version() and check_index(folder, mini_kb, FAST) is None
    monkeypatch.setenv("KMED_KIWI_MULTI_DICT", "0" if kiwi_multi_dict() else "1")
    assert kiwi_version() != manifest["inputs"]["analyzer"]
    assert "stale" in check_index(folder, mini_kb, FAST)


def test_load_refuses_stale_index_without_auto_build(built, tmp_path):
    from kmed import Assistant
    from kmed.errors import IndexStaleError

    folder, _ = built
    kb_copy = tmp_path / "kb"
    shutil.copytree(MINI, kb_copy)
    path = kb_copy / "conditions" / "digestive.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("흔한 병이고", "매우 흔한 병이고"), encoding="utf-8")
    with pytest.raises(IndexStaleError, match="kmed build index"):
        Assistant.load(kb_dir=kb_copy, index_dir=folder, config=FAST, auto_build=False)


def test_interrupted_build_keeps_the_old_index(built, mini_kb, tmp_path, monkeypatch):
    from kmed.retrieval import index as index_module

    folder, _ = built
    target = tmp_path / "default"
    shutil.copytree(folder, target)
    before = (target / "manifest.json").read_text(encoding="utf-8")

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(index_module.BM25Index, "build", boom)
    with pytest.raises(KeyboardInterrupt):
        index_module.build_index(mini_kb, target, FAST)
    assert (target / "manifest.json").read_text(encoding="utf-8") == before
    assert not list(tmp_path.glob(".default.tmp-*"))


def test_rebuild_reuses_vectors_of_unchanged_passages(built, mini_kb, tmp_path):
    """With a fixed embedder, a small KB edit re-embeds only the changed passages."""
    from kmed.retrieval.index import build_index

    class FixedEmbedder:
        spec = "fixed-test"
        dim = 8
        calls: list[int] = []

        def encode(self, texts):
            self.calls.append(len(texts))
            return np.ones((len(texts), 8), dtype=np.float32) / np.sqrt(8)

    embedder = FixedEmbedder()
    config = RetrievalConfig(dense=DenseConfig(model="st:fixed-test"))
    import kmed.retrieval.dense as dense_module

    original = dense_module.SentenceTransformerEmbedder
    dense_module.SentenceTransformerEmbedder = lambda spec: embedder
    try:
        target = tmp_path / "default"
        first = build_index(mini_kb, target, config)
        kb_copy = tmp_path / "kb"
        shutil.copytree(MINI, kb_copy)
        path = kb_copy / "conditions" / "digestive.yaml"
        path.write_text(path.read_text(encoding="utf-8").replace("흔한 병이고", "매우 흔한 병이고"), encoding="utf-8")
        second = build_index(load_kb_or_fail(kb_copy), target, config)
    finally:
        dense_module.SentenceTransformerEmbedder = original
    assert first["dense"]["embedded"] == first["counts"]["passages"]
    assert second["dense"]["embedded"] == 1 and second["dense"]["reused"] == second["counts"]["passages"] - 1


def test_trained_embedder_vectors_are_reused_only_from_the_same_weights(built, mini_kb, tmp_path, monkeypatch):
    """The same training pairs can train other weights (another Kiwi analysis, another seed): vectors
    from the previous build are reused only when the saved embedder is byte-identical."""
    import kmed.retrieval.index as index_module

    target = tmp_path / "default"
    shutil.copytree(built[0], target)
    same = index_module.build_index(mini_kb, target, FAST)
    assert same["dense"]["reused"] == same["counts"]["passages"] and same["dense"]["embedded"] == 0

    train = index_module.KiwiStaticEmbedder.train.__func__
    monkeypatch.setattr(index_module.KiwiStaticEmbedder, "train",
                        classmethod(lambda cls, pairs, analyzer, steps: train(cls, pairs, analyzer, seed=99, steps=steps)))
    other = index_module.build_index(mini_kb, target, FAST)
    assert other["dense"]["reused"] == 0 and other["dense"]["embedded"] == other["counts"]["passages"]


def test_missing_embedding_model_names_the_config_key(mini_kb, tmp_path):
    from kmed.errors import ConfigError
    from kmed.retrieval.index import build_index

    config = RetrievalConfig(dense=DenseConfig(model=str(tmp_path / "no-such-model")))
    with pytest.raises(ConfigError, match="dense.model"):
        build_index(mini_kb, tmp_path / "default", config)
    assert not (tmp_path / "default").exists()


def test_unknown_config_key_is_rejected(tmp_path):
    from kmed.errors import ConfigError

    path = tmp_path / "retrieval.yaml"
    path.write_text("max_chars: 200\ndense:\n  modle: x\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="modle"):
        RetrievalConfig.load(path)


def test_langchain_retriever_in_an_lcel_chain(assistant):
    from langchain_core.runnables import RunnableLambda

    from kmed.retrieval.langchain_adapter import KmedRetriever

    retriever = KmedRetriever(assistant=assistant, k=2)
    chain = retriever | RunnableLambda(lambda docs: [d.metadata["entity_ids"][0] for d in docs])
    assert chain.invoke("타이레놀 최대 용량")[0] == "drug.acetaminophen"


def test_topics_become_quotable_passages_and_link(kb, linker):
    from kmed.retrieval.chunking import _topic_passages

    passages = list(_topic_passages(kb))
    assert passages and all(p.metadata["entity_type"] == "topic" and p.metadata["section"] == "overview"
                            for p in passages)
    glucose = [p for p in passages if "topic.blood_glucose_values" in p.metadata["entity_ids"]]
    assert glucose[0].metadata["entity_ids"][0] == "cond.type2_diabetes"  # its first related entry leads
    assert any("126 mg/dL" in p.text for p in glucose)
    for p in passages:
        assert len(p.metadata["sentence_ends"]) >= 1 and p.metadata["sentence_ends"][-1] == len(p.text)
    # A topic phrase links, and the entities inside it still link too.
    ids = [m.id for m in linker.link("감기에 항생제 먹어야 빨리 낫나요?")]
    assert "topic.cold_antibiotics" in ids and "cond.common_cold" in ids
