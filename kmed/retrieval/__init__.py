"""Retrieval: passages, Kiwi BM25, dense FAISS, KG facts and their fusion."""
