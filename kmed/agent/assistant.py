"""The Python API: ``Assistant.load()`` → ``session()`` → ``ask()``.

    from kmed import Assistant
    assistant = Assistant.load()                 # shipped KB + built indexes (built if missing)
    reply = assistant.session().ask("어제부터 열이 나고 목이 아파요")
    reply.to_dict()                              # answer, citations, triage, entities, departments, refused
    assistant.search("당뇨병 진단 기준", k=5)      # list[Hit]

``generator`` defaults to the weight-free ``ExtractiveGenerator``; pass any ``kmed.llm.base.Generator``
(e.g. from ``kmed.llm.factory.load_generator``) to answer with a real model.

Start-up reads only the built index: the KB files are hashed (not parsed) to check that the index
is current, and the KB itself, the term dictionary with its keys, the KG and the passages come from
the index. The YAML is parsed only when the index must be (re)built.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from kmed.agent.classifier import MessageClassifier, load_or_build
from kmed.agent.red_flags import RedFlagEngine
from kmed.agent.session import Session
from kmed.data.kb import KnowledgeBase, combined_hash, kb_file_hashes, load_kb_or_fail
from kmed.errors import IndexMissingError, IndexStaleError, KmedError
from kmed.kg.linker import EntityLinker
from kmed.llm.base import Generator
from kmed.paths import default_index_dir, default_kb_dir
from kmed.retrieval.config import RetrievalConfig
from kmed.retrieval.hybrid import HybridRetriever
from kmed.retrieval.index import build_index, check_index, load_index, read_manifest
from kmed.retrieval.passages import Hit
from kmed.text_ko import warm_splitter

log = logging.getLogger(__name__)


class Assistant:
    def __init__(self, kb: KnowledgeBase, retriever: HybridRetriever, generator: Generator, load_seconds: float = 0.0,
                 classifier: MessageClassifier | None = None):
        self.kb = kb
        self.retriever = retriever
        self.linker = retriever.linker
        self.red_flags = RedFlagEngine(kb)
        self.generator = generator
        self.load_seconds = load_seconds
        # None: the rules and the KG still triage; only the learned layer is missing.
        self.classifier = classifier

    @classmethod
    def load(
        cls,
        kb_dir: str | Path | None = None,
        index_dir: str | Path | None = None,
        config: RetrievalConfig | str | Path | None = None,
        generator: Generator | None = None,
        auto_build: bool = True,
        progress=None,
        classifier_dir: str | Path | None = None,
    ) -> Assistant:
        """Load the index built from the KB; a missing or stale index is rebuilt (``auto_build``) or reported."""
        started = time.perf_counter()
        root = Path(kb_dir) if kb_dir else default_kb_dir()
        files = kb_file_hashes(root)
        if files is None:
            load_kb_or_fail(root)  # raises the KB's own "folder not found" error
        digest = combined_hash(files)
        if not isinstance(config, RetrievalConfig):
            config = RetrievalConfig.load(config)
        folder = Path(index_dir) if index_dir else default_index_dir() / "default"
        previous = read_manifest(folder) or {}
        with_processed = isinstance(previous.get("inputs"), dict) and bool(previous["inputs"].get("processed"))
        kb: KnowledgeBase | None = None  # parsed only to build
        problem = check_index(folder, digest, config)
        if problem:
            if not auto_build:
                error = IndexMissingError if problem == "missing" else IndexStaleError
                raise error(f"검색 인덱스({folder})가 {problem} 상태예요.", "kmed build index 로 만드세요.")
            kb = load_kb_or_fail(root)
            build_index(kb, folder, config, with_processed=with_processed, progress=progress)
        try:
            artifacts = load_index(folder, kb if kb is not None else digest, config, kb_root=root)
        except IndexStaleError:  # a corrupt file: rebuilt silently, or reported with the fix
            if not auto_build:
                raise
            kb = kb if kb is not None else load_kb_or_fail(root)
            build_index(kb, folder, config, with_processed=with_processed, progress=progress)
            artifacts = load_index(folder, kb, config)
        retriever = HybridRetriever(artifacts, EntityLinker(artifacts.terms), config)
        if generator is None:
            from kmed.llm.extractive import ExtractiveGenerator

            generator = ExtractiveGenerator()
        if generator.name != "extractive":
            # A model is read now, not in the first answer (about 3 s for Gemma 3 270M: torch, the
            # tokenizer, the weights), and so is the splitter's Kiwi, with which the output guard checks
            # every sentence a model writes. The composer needs neither: it quotes stored sentences.
            generator.warm_up()
            warm_splitter()
        # The classifier depends only on data/triage, not on the KB, so every index shares one.
        classifier = _load_classifier(classifier_dir, auto_build)
        return cls(artifacts.kb, retriever, generator, load_seconds=time.perf_counter() - started,
                   classifier=classifier)

    def session(self) -> Session:
        return Session(self)

    def ask(self, message: str):
        """One question, one answer (a fresh session)."""
        return self.session().ask(message)

    def search(self, query: str, k: int = 5, filters: dict | None = None) -> list[Hit]:
        return self.retriever.search(query, k=k, filters=filters)

    def source_names(self, source_ids: list[str]) -> str:
        names = [f"{self.kb.sources[s].publisher} {self.kb.sources[s].title}" if s in self.kb.sources else s for s in source_ids]
        return ", ".join(dict.fromkeys(names))


def _load_classifier(folder: Path | None, auto_build: bool) -> MessageClassifier | None:
    """The learned triage layer; when it cannot be had, say why once and go on with rules and KG."""
    try:
        return load_or_build(folder, auto_build=auto_build)
    except KmedError as exc:
        log.warning("메시지 분류기 없이 규칙과 지식그래프로만 응급 여부를 판단해요: %s", exc)
        return None
