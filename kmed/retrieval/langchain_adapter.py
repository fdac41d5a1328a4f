"""LangChain ``BaseRetriever`` over kmed's hybrid retriever (LangChain stays out of the core).

    from kmed import Assistant
    from kmed.retrieval.langchain_adapter import KmedRetriever
    retriever = KmedRetriever(assistant=Assistant.load(), k=5)
    docs = retriever.invoke("당뇨병 진단 기준")        # list[langchain_core.documents.Document]
"""

from __future__ import annotations

from typing import Any

from kmed.errors import require_extra

require_extra("langchain_core", "langchain", "LangChain 검색기 어댑터")  # an optional extra: kmed[langchain]

from langchain_core.callbacks import CallbackManagerForRetrieverRun  # noqa: E402
from langchain_core.documents import Document  # noqa: E402
from langchain_core.retrievers import BaseRetriever  # noqa: E402


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
