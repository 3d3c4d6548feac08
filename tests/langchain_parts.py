"""Real LangChain parts for the adapter tests: embeddings from the offline bi-encoder, a vector store."""

from __future__ import annotations

from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import InMemoryVectorStore

from rerank_plugins.retrieval.embedder import Embedder


class BiEncoderEmbeddings(Embeddings):
    """LangChain ``Embeddings`` over a local sentence-transformers bi-encoder (our fast ``Embedder``)."""

    def __init__(self, path: str) -> None:
        self.embedder = Embedder(path)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embedder.embed(texts).tolist()  # type: ignore[no-any-return]

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


def vector_store(path: str, texts: dict[str, str]) -> InMemoryVectorStore:
    store = InMemoryVectorStore(BiEncoderEmbeddings(path))
    store.add_documents(
        [Document(page_content=text, id=doc_id, metadata={"doc_id": doc_id}) for doc_id, text in texts.items()]
    )
    return store
