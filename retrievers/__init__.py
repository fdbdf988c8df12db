"""Retrievers (FAISS vector store, BM25 hybrid): arrive with the retrievers issue."""
