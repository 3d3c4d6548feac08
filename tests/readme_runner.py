"""Runs the README's python blocks in a fresh process, as a new user would paste them.

    python -m tests.readme_runner PLAN.json RESULTS.json

Each section's blocks share one namespace, filled first by that section's setup with what the README
leaves to the reader (``embeddings``, ``index``, ``texts``, an LLM, a running service) and with
placeholder paths and URLs swapped for real ones. Hub ids are not rewritten: the test lays out a
Hugging Face cache (``HF_HUB_CACHE``) holding the shared models under those ids, so the real loading
code resolves them offline. Each block's stdout, error and last expression's value are written out.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import io
import json
import sys
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from rerank_plugins.evaluation.beir import load_corpus

QUERY = "Does B12 deficiency raise homocysteine?"
RELEVANT_WORD = "homocyst"
"""The README's example query, and the word in the abstracts about it (homocysteine, hyperhomocysteinemia)."""


CALIBRATION_SECTION = 'Calibrated relevance and "nothing relevant"'
PASSAGES_SECTION = "Evidence passages: the text that earned the score"
LIGHT_SECTION = "Without torch: exported models"


@functools.lru_cache(maxsize=1)
def science_passages(scifact: Path, count: int = 40) -> list[tuple[str, str]]:
    """(id, title + abstract) of SciFact abstracts: all those about homocysteine, then others up to ``count``."""
    passages = list(load_corpus(scifact / "corpus.jsonl").items())
    on_topic = [p for p in passages if RELEVANT_WORD in p[1].lower()]
    return (on_topic + [p for p in passages if RELEVANT_WORD not in p[1].lower()])[:count]


class Setup:
    """What one section needs before its blocks run; ``close`` stops anything it started."""

    def __init__(self, context: dict[str, Any]) -> None:
        self.context = context
        self.namespace: dict[str, Any] = {}
        self.replacements: dict[str, str] = {"../shared": context["shared"]}
        self._stack = contextlib.ExitStack()

    def close(self) -> None:
        self._stack.close()

    def passages(self) -> list[tuple[str, str]]:
        return science_passages(Path(self.context["shared"]) / "data" / "scifact")


def _offline(setup: Setup) -> None:
    setup.replacements["/models/ms-marco-MiniLM-L6-v2"] = setup.context["local_model"]


def _langchain(setup: Setup) -> None:
    """What the LangChain blocks leave to the reader: embeddings and texts, and the vector store they make."""
    from tests.langchain_parts import BiEncoderEmbeddings, vector_store

    setup.namespace["embeddings"] = BiEncoderEmbeddings(setup.context["bi_encoder"])
    setup.namespace["texts"] = [text for _, text in setup.passages()]
    setup.namespace["vector_store"] = vector_store(setup.context["bi_encoder"], dict(setup.passages()))


def _llama_index(setup: Setup) -> None:
    from llama_index.core import VectorStoreIndex
    from llama_index.core.llms import MockLLM
    from llama_index.core.schema import TextNode
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding

    nodes = [TextNode(text=text, id_=pid) for pid, text in setup.passages()]
    embed_model = HuggingFaceEmbedding(model_name=setup.context["bi_encoder"], device="cpu")
    setup.namespace["index"] = VectorStoreIndex(nodes, embed_model=embed_model)
    setup.namespace["llm"] = MockLLM()  # the reader's LLM


def _fusion(setup: Setup) -> None:
    from rerank_plugins import Reranker
    from rerank_plugins.retrieval import FaissRetriever
    from tests.langchain_parts import vector_store

    passages = setup.passages()
    hits = FaissRetriever.from_texts([text for _, text in passages]).search(QUERY, k=20)
    setup.namespace.update(
        vector_store=vector_store(setup.context["bi_encoder"], dict(passages)),
        reranker=Reranker("cross-encoder/ms-marco-MiniLM-L6-v2"),
        query=QUERY,
        docs=[hit.text for hit in hits],
        cosines=[hit.score for hit in hits],
    )


def _faiss(setup: Setup) -> None:
    passages = setup.passages()
    setup.namespace.update(
        texts=[text for _, text in passages[:30]],
        ids=[pid for pid, _ in passages[:30]],
        metadatas=[{"source": "scifact"} for _ in passages[:30]],
        more_texts=[text for _, text in passages[30:]],
        more_ids=[pid for pid, _ in passages[30:]],
    )


def _serving(setup: Setup) -> None:
    from rerank_plugins import Reranker
    from rerank_plugins.serving import create_app
    from rerank_plugins.serving.background import serve_in_background

    app = create_app(Reranker("cross-encoder/ms-marco-MiniLM-L6-v2"))
    url = setup._stack.enter_context(serve_in_background(app))
    setup.replacements.update({"http://127.0.0.1:8000": url, "http://tei-host:8080": url})


def _light(setup: Setup) -> None:
    """The folder the README's ``export`` command writes: the README's model exported to ONNX int8 here."""
    import tempfile

    from rerank_plugins.export import export_model

    folder = Path(tempfile.mkdtemp(prefix="readme-export-")) / "minilm-int8"
    export_model("cross-encoder/ms-marco-MiniLM-L6-v2", folder, runtime="onnx", precision="int8")
    setup.replacements["models/minilm-int8"] = str(folder)


def _calibration(setup: Setup) -> None:
    """The calibration file the README's ``calibrate`` command makes: the one ``benchmarks/calibration_scifact.py``
    fitted with that command's settings (300 train claims, FAISS top 50, unanswerable claims synthesised), for
    the core the README builds on this machine."""
    import json
    import tempfile

    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    from rerank_plugins import Reranker
    from rerank_plugins.calibration import Calibration

    results = Path(__file__).resolve().parents[1] / "benchmarks" / "results"
    measured = json.loads((results / "calibration_scifact.json").read_text(encoding="utf-8"))
    platt = measured["platt"]
    core = Reranker("cross-encoder/ms-marco-MiniLM-L6-v2", calibration=None)
    calibration = Calibration("platt", platt["parameters"], core.score_configuration(), {},
                              platt["any_parameters"], platt["abstention"])  # fmt: skip
    root = Path(setup._stack.enter_context(tempfile.TemporaryDirectory()))
    setup.replacements["runs/scifact-calibration.json"] = str(calibration.save(root / "calibration.json"))
    _langchain(setup)
    _llama_index(setup)
    setup.namespace["chat_model"] = FakeListChatModel(responses=["B12 deficiency raises homocysteine."] * 4)


def _passages(setup: Setup) -> None:
    """Long documents for the passage blocks: the science passages chained three at a time, as the benchmark does."""
    from langchain_core.documents import Document
    from llama_index.core.schema import NodeWithScore, TextNode

    passages = setup.passages()
    chains = [passages[i : i + 3] for i in range(0, len(passages), 3)]
    long_docs = [" ".join(text for _, text in chain) for chain in chains]
    ids = ["+".join(pid for pid, _ in chain) for chain in chains]
    setup.namespace.update(
        query=QUERY,
        long_docs=long_docs,
        documents=[Document(page_content=text, id=pid) for pid, text in zip(ids, long_docs, strict=True)],
        nodes=[NodeWithScore(node=TextNode(text=text, id_=pid)) for pid, text in zip(ids, long_docs, strict=True)],
    )


SETUPS: dict[str, Callable[[Setup], None]] = {
    "Offline use with a local model": _offline,
    "LangChain": _langchain,
    "LlamaIndex": _llama_index,
    "Score fusion": _fusion,
    "Retrieval: a FAISS bi-encoder retriever": _faiss,
    "Serving: a rerank service, remote adapters, Ray": _serving,
    CALIBRATION_SECTION: _calibration,
    PASSAGES_SECTION: _passages,
    LIGHT_SECTION: _light,
}
"""Sections whose blocks need something first; the others run in an empty namespace."""


def _jsonable(value: Any) -> Any:
    try:
        return json.loads(json.dumps(value, default=repr))
    except (TypeError, ValueError):
        return repr(value)


def run_block(code: str, filename: str, namespace: dict[str, Any]) -> dict[str, Any]:
    """Execute ``code`` as a REPL would: the last expression's value is kept, stdout is captured."""
    tree = ast.parse(code, filename)
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    out = io.StringIO()
    result: dict[str, Any] = {"error": None, "value": None}
    try:
        with contextlib.redirect_stdout(out):
            exec(compile(tree, filename, "exec"), namespace)
            if last is not None:
                value = eval(compile(ast.Expression(last.value), filename, "eval"), namespace)
                result["value"] = _jsonable(value)
    except Exception:
        result["error"] = traceback.format_exc()
    result["stdout"] = out.getvalue()
    return result


def observe(section: str, namespace: dict[str, Any]) -> dict[str, Any]:
    """Facts the tests check after a section ran, beyond printed output."""
    facts: dict[str, Any] = {}
    if "docs" in namespace and section == "LangChain":
        facts["docs"] = [(d.page_content, d.metadata.get("relevance_score")) for d in namespace["docs"]]
        facts["top3"] = [(d.page_content, d.metadata.get("relevance_score")) for d in namespace["top3"]]
    if section == "Retrieval: a FAISS bi-encoder retriever":
        facts["hits"] = [(hit.id, hit.text, hit.score) for hit in namespace["hits"]]
        facts["loaded"] = len(namespace["index"])
    if section == "Score fusion" and "fused" in namespace:
        facts["fused"] = [document.metadata.get("fused_score") for document in namespace["fused"]]
    if section == CALIBRATION_SECTION:
        facts["replies"] = namespace.get("replies")
        facts["answers"] = namespace.get("answers")
        facts["nothing"] = namespace.get("nothing")
        verdict = namespace.get("verdict") or {}
        facts["verdict"] = {"p_any_relevant": verdict.get("p_any_relevant"), "abstained": verdict.get("abstained")}
    if section == PASSAGES_SECTION and "passage_nodes" in namespace:
        whole = {d.id: d.page_content for d in namespace["documents"]}
        facts["passages"] = [(whole[d.id], d.page_content, d.metadata["rerank_span"]) for d in namespace["passages"]]
        facts["passage_nodes"] = [(whole[n.node.node_id], n.node.get_content()) for n in namespace["passage_nodes"]]
    if section == "LlamaIndex" and "best" in namespace:
        facts["best"] = [(n.node.get_content(), n.score) for n in namespace["best"]]
    return facts


@contextlib.contextmanager
def _section(name: str, context: dict[str, Any]) -> Iterator[Setup]:
    setup = Setup(context)
    try:
        SETUPS.get(name, lambda _: None)(setup)
        yield setup
    finally:
        setup.close()


def main(plan_file: str, results_file: str) -> None:
    plan = json.loads(Path(plan_file).read_text(encoding="utf-8"))
    results: dict[str, Any] = {}
    for name, blocks in plan["sections"].items():
        try:
            with _section(name, plan["context"]) as setup:
                for block in blocks:
                    code = block["code"]
                    for placeholder, real in setup.replacements.items():
                        code = code.replace(placeholder, real)
                    results[str(block["line"])] = run_block(code, f"README.md:{block['line']}", setup.namespace)
                results[name] = observe(name, setup.namespace)
        except Exception:
            results[name] = {"setup_error": traceback.format_exc()}
    Path(results_file).write_text(json.dumps(results, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main(*sys.argv[1:3])
