"""FAQ retrieval: document loaders, the sentence embedder and the FAISS index."""
