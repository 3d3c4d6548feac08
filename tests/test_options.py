"""The core's options are declared once (``rerank_plugins.options``): everything that lists them is checked
against that table here, and every option survives the adapters' round trips with the same scores."""

from __future__ import annotations

import argparse
import inspect
import pickle
import typing
from pathlib import Path
from typing import Any

import pytest
from langchain_core.documents import Document
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from rerank_plugins import Reranker
from rerank_plugins.cli.options import add_reranker_options, core_options
from rerank_plugins.langchain import RerankCompressor
from rerank_plugins.llama_index import RerankPostprocessor
from rerank_plugins.options import CORE_OPTIONS, check_options, markdown_table, option
from rerank_plugins.settings import RerankSettings
from tests.model_families import qwen3_reranker
from tests.paths import REPO

NON_DEFAULT: dict[str, Any] = {
    "device": "cpu",
    "precision": "fp32",
    "runtime": "torch",
    "batch_size": 3,
    "max_batch_tokens": 2048,
    "unpadded": True,
    "max_length": 96,
    "long_documents": "window",
    "window_aggregation": "mean",
    "window_overlap": 12,
    "window_boundaries": "sentence",
    "cache_size": 16,
    "revision": "main",
    "trust_remote_code": True,
    "show_progress_bar": False,
    "instruction": "Given a health claim, find the abstract that supports or refutes it",
    "calibration": None,
    "abstain": True,
    "metadata_mode": "embed",
}
"""A value other than the default for every option but ``model`` (a test's own path is never the default)."""
NEEDS_A_RULE = {"abstain": False}
"""``abstain=True`` is refused at load without a calibration holding an abstention rule (``calibration`` is None
here): the scoring round trips leave it off; its own round trip is in the adapter tests."""


def test_every_option_has_a_non_default_value_here() -> None:
    assert set(NON_DEFAULT) | {"model"} == {o.name for o in CORE_OPTIONS}
    assert all(NON_DEFAULT[o.name] != o.default for o in CORE_OPTIONS if o.name != "model")


def test_the_readme_options_table_is_the_table() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert markdown_table() in readme, "README's options table differs: paste rerank_plugins.options.markdown_table()"


def test_the_constructor_signature_is_pinned_to_the_table() -> None:
    parameters = list(inspect.signature(Reranker.__init__).parameters.values())[1:]
    assert [p.name for p in parameters] == [o.name for o in CORE_OPTIONS]
    assert [p.default for p in parameters] == [o.default for o in CORE_OPTIONS]
    hints = typing.get_type_hints(Reranker.__init__)
    for o in CORE_OPTIONS:
        if o.name != "calibration":  # the core also takes an os.PathLike there; the table keeps the str
            assert hints[o.name] == o.type, o.name
    assert all(f"    {o.name}: " in (Reranker.__init__.__doc__ or "") for o in CORE_OPTIONS)


def test_the_adapters_settings_carry_every_option_with_its_default() -> None:
    fields = RerankSettings.model_fields
    for o in CORE_OPTIONS:
        assert fields[o.name].default == o.default and fields[o.name].description == o.help, o.name


def test_the_score_cache_key_holds_every_option_that_changes_scores(trained_model: str) -> None:
    core = Reranker(trained_model, runtime="torch", long_documents="window").load()
    loaded = core._model()[0]
    key = core._score_options(loaded)
    assert set(key) == {o.name for o in CORE_OPTIONS if o.scores != "no"}
    assert key["max_length"] == loaded.max_length and key["window_aggregation"] == "max"
    truncating = Reranker(trained_model, runtime="torch", window_overlap=8)._score_options(loaded)
    assert truncating["window_overlap"] is None  # windows change nothing when documents are cut


def test_every_flag_reaches_the_core() -> None:
    parser = argparse.ArgumentParser()
    add_reranker_options(parser)
    argv = ["--model", "m"]
    for o in CORE_OPTIONS:
        value = NON_DEFAULT.get(o.name)
        if o.flag is None or o.name == "model":
            continue
        if o.kind is bool:
            argv.append(o.flag if value else "--no-" + o.flag[2:])
        else:
            argv += [o.flag, "none" if value is None else str(value)]
    expected = {"model": "m", **{o.name: NON_DEFAULT[o.name] for o in CORE_OPTIONS if o.flag and o.name != "model"}}
    assert core_options(parser.parse_args(argv)) == expected
    # the command decides the one; the other says what the adapters score (the command scores plain texts)
    assert [o.name for o in CORE_OPTIONS if o.flag is None] == ["show_progress_bar", "metadata_mode"]


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"batch_sise": 3}, "unknown Reranker options \\['batch_sise'\\]"),
        ({"window_overlap": -1}, "window_overlap must be an int >= 0"),
        ({"unpadded": "yes"}, "unpadded must be None, True or False"),
        ({"trust_remote_code": 1}, "trust_remote_code must be True or False"),
        ({"window_boundaries": "paragraph"}, "window_boundaries must be 'tokens' or 'sentence'"),
        ({"revision": ""}, "revision must be None or a non-empty string"),
    ],
)
def test_the_table_refuses_what_an_option_does_not_take(given: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_options(given)
    with pytest.raises((ValueError, TypeError), match=next(iter(given))):  # Python names an unknown keyword
        Reranker(**{"model": "m", **given})


QUERY = "Vitamin D supplementation reduces the risk of bone fractures in older adults."


def _documents(scifact_corpus: dict[str, str]) -> list[str]:
    return [text for text in scifact_corpus.values() if 600 < len(text) < 1500][:5]


def _scores_through_both_adapters(core: Reranker, documents: list[str]) -> tuple[Any, ...]:
    """Scores of the original core and of the cores rebuilt from each adapter's serialised form."""
    compressor = RerankCompressor(reranker=core, top_n=None)
    postprocessor = RerankPostprocessor(reranker=core, top_n=None)
    data = compressor.model_dump()  # LangChain keeps a compressor's settings as its pydantic fields
    langchain = RerankCompressor.model_validate_json(compressor.model_dump_json())
    llama = RerankPostprocessor.from_dict(postprocessor.to_dict())
    for restored in (RerankCompressor(**data), langchain, llama, pickle.loads(pickle.dumps(compressor))):
        assert restored.core.options() == core.options()
    reranked = langchain.compress_documents([Document(page_content=d) for d in documents], QUERY)
    nodes = [NodeWithScore(node=TextNode(text=d, id_=str(i)), score=0.0) for i, d in enumerate(documents)]
    postprocessed = llama.postprocess_nodes(nodes, query_bundle=QueryBundle(QUERY))
    by_text = {d.page_content: d.metadata["relevance_score"] for d in reranked}
    return (
        [r.relevance_score for r in sorted(core.rank(QUERY, documents), key=lambda r: r.index)],
        [by_text[d] for d in documents],
        [score for _, score in sorted((int(n.node.node_id), n.score) for n in postprocessed)],
    )


def test_every_option_round_trips_through_both_adapters_with_equal_scores(
    trained_model: str, scifact_corpus: dict[str, str]
) -> None:
    options = {name: value for name, value in NON_DEFAULT.items() if name != "instruction"}  # a classifier refuses it
    core = Reranker(trained_model, **{**options, **NEEDS_A_RULE})
    documents = _documents(scifact_corpus)
    original, langchain, llama = _scores_through_both_adapters(core, documents)
    assert original == langchain == llama
    default = sorted(Reranker(trained_model).rank(QUERY, documents), key=lambda r: r.index)
    assert original != [r.relevance_score for r in default]  # the options did act


def test_instruction_round_trips_with_every_other_option(
    tmp_path_factory: pytest.TempPathFactory, scifact_corpus: dict[str, str]
) -> None:
    model = str(qwen3_reranker(tmp_path_factory.mktemp("qwen3"), layers=1))
    core = Reranker(model, **{**NON_DEFAULT, **NEEDS_A_RULE, "max_length": 320})
    original, langchain, llama = _scores_through_both_adapters(core, _documents(scifact_corpus))
    assert original == langchain == llama
    assert option("instruction").scores == "yes" and core.options()["instruction"] == NON_DEFAULT["instruction"]


def test_ray_takes_the_table(tmp_path: Path) -> None:
    from rerank_plugins.serving.ray_data import rerank_dataset

    with pytest.raises(ValueError, match="unknown Reranker options \\['precison'\\]"):
        rerank_dataset(None, {"model": "m", "precison": "fp32"})


@pytest.mark.parametrize("adapter", [RerankCompressor, RerankPostprocessor])
@pytest.mark.parametrize("name", sorted({*NON_DEFAULT, "model"} - {"metadata_mode"}))
def test_url_refuses_every_local_only_option_by_name(adapter: type, name: str) -> None:
    value = NON_DEFAULT.get(name, "some/other-model")
    with pytest.raises(ValueError, match=f"url= runs the model on the service; drop {name}"):
        adapter(url="http://127.0.0.1:9", **{name: value})


@pytest.mark.parametrize("adapter", [RerankCompressor, RerankPostprocessor])
def test_url_keeps_what_the_adapter_itself_reads(adapter: type) -> None:
    built = adapter(url="http://127.0.0.1:9", metadata_mode="embed", top_n=2)
    assert (built.url, built.metadata_mode, built.top_n) == ("http://127.0.0.1:9", "embed", 2)


def test_the_type_checkers_view_of_the_settings_is_the_table() -> None:
    """``settings._CoreSettings`` under TYPE_CHECKING (what mypy and pyright see of the generated fields):
    every option but ``model``, with the table's type and default."""
    import ast

    source = (REPO / "rerank_plugins" / "settings.py").read_text(encoding="utf-8")
    (stub,) = [
        node for node in ast.walk(ast.parse(source)) if isinstance(node, ast.ClassDef) and node.name == "_CoreSettings"
    ]
    declared = {
        field.target.id: (ast.unparse(field.annotation), ast.literal_eval(field.value))
        for field in stub.body
        if isinstance(field, ast.AnnAssign) and isinstance(field.target, ast.Name) and field.value is not None
    }
    namespace = {"Literal": typing.Literal, "MetadataMode": typing.Literal["none", "embed", "llm", "all"]}
    assert {name: (eval(kind, namespace), default) for name, (kind, default) in declared.items()} == {
        o.name: (o.type, o.default) for o in CORE_OPTIONS if o.name != "model"
    }
