"""LangChain ``BaseRetriever`` over kmed's hybrid retriever (LangChain stays out of the core).

    from kmed import Assistant
    from kmed.retrieval.langchain_adapter import KmedRetriever
    retriever = KmedRetriever(assistant=Assistant.load(), k=5)
    docs = retriever.invoke("당뇨병 진단 기준")        # list[langchain_core.documents.Document]
"""

from __future__ import annotations

from typing import Any

try:
    from langchain_core.callbacks import CallbackManagerForRetrieverRun
    from langchain_core.documents import Document
    from langchain_core.retrievers import BaseRetriever
except ImportError as exc:  # pragma: no cover - langchain-core is declared, but stay explicit
    raise ImportError("LangChain 어댑터에는 langchain-core가 필요해요: pip install langchain-core") from exc


class KmedRetriever(BaseRetriever):
    assistant: Any
    k: int = 5
    filters: dict | None = None

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        hits = self.assistant.search(query, k=self.k, filters=self.filters)
        return [
            Document(page_content=h.text, metadata={**h.metadata, "id": h.id, "title": h.title, "score": h.score})
            for h in hits
        ]
