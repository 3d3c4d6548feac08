"""Fine-tuning: a short real run on a SciFact slice, the saved model's reloads, and bad training data."""

from __future__ import annotations

import json
import logging
import math
import random
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from rerank_plugins import Reranker
from rerank_plugins.cli import main
from rerank_plugins.retrieval import FaissRetriever
from rerank_plugins.training import TrainingConfig, TrainingReport, fine_tune, load_training_data
from rerank_plugins.training.negatives import Group, mine_hard_negatives, sample_groups
from tests.paths import SCIFACT, build_random_cross_encoder

TINY = TrainingConfig(
    epochs=1,
    max_length=64,
    hard_negatives=3,
    random_negatives=4,
    learning_rate=5e-4,
    head_learning_rate=5e-2,
    warmup_ratio=0.0,
    dev_queries=4,
    dev_top_k=10,
)


def write_beir(
    root: Path, corpus: dict[str, str], queries: dict[str, str], judgments: list[tuple[str, str, int]]
) -> Path:
    """A BEIR directory with a train split, for training tests."""
    (root / "qrels").mkdir(parents=True, exist_ok=True)
    with open(root / "corpus.jsonl", "w", encoding="utf-8") as out:
        out.writelines(json.dumps({"_id": d, "title": "", "text": t}) + "\n" for d, t in corpus.items())
    with open(root / "queries.jsonl", "w", encoding="utf-8") as out:
        out.writelines(json.dumps({"_id": q, "text": t}) + "\n" for q, t in queries.items())
    rows = "".join(f"{q}\t{d}\t{s}\n" for q, d, s in judgments)
    (root / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\n" + rows, encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def tiny_beir(
    tmp_path_factory: pytest.TempPathFactory, scifact_corpus: dict[str, str], scifact_queries: dict[str, str]
) -> Path:
    """The first 40 SciFact train claims, their judged abstracts and 60 other abstracts."""
    lines = (SCIFACT / "qrels" / "train.tsv").read_text(encoding="utf-8").splitlines()[1:]
    rows = [(q, d, int(s)) for q, d, s in (line.split("\t") for line in lines)]
    query_ids = list(dict.fromkeys(q for q, _, _ in rows))[:40]
    judgments = [row for row in rows if row[0] in query_ids]
    doc_ids = list(dict.fromkeys([d for _, d, _ in judgments] + list(scifact_corpus)[:60]))
    corpus = {d: scifact_corpus[d] for d in doc_ids}
    return write_beir(
        tmp_path_factory.mktemp("tiny-beir"), corpus, {q: scifact_queries[q] for q in query_ids}, judgments
    )


@pytest.fixture(scope="module")
def tiny_retriever(tiny_beir: Path, bi_encoder_path: str) -> FaissRetriever:
    data = load_training_data(tiny_beir, dev_queries=0)
    return FaissRetriever.from_texts(
        list(data.train.corpus.values()), ids=list(data.train.corpus), model=bi_encoder_path
    )


def first_epoch_groups(data_dir: Path, retriever: FaissRetriever, config: TrainingConfig) -> list[Group]:
    """The groups ``fine_tune`` trains on in its first epoch (same data split, mining and seed)."""
    data = load_training_data(data_dir, dev_queries=config.dev_queries, dev_seed=config.dev_seed)
    hard = mine_hard_negatives(retriever, data.train, config.negative_depth)
    return sample_groups(data.train, hard, config.hard_negatives, config.random_negatives, random.Random(config.seed))


def listwise_loss_of(model: str, groups: list[Group], max_length: int) -> float:
    core = Reranker(model, precision="fp32", max_length=max_length)
    losses = [-torch.log_softmax(torch.tensor(core.score(g.query, list(g.documents))), 0)[0] for g in groups]
    return float(torch.stack(losses).mean())


@pytest.fixture(scope="module")
def random_base(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A random-weight one-logit cross-encoder of its own (the session one is shared with other tests)."""
    return str(build_random_cross_encoder(tmp_path_factory.mktemp("random-base"), seed=1))


@pytest.fixture(scope="module")
def trained(
    tiny_beir: Path, random_base: str, tiny_retriever: FaissRetriever, tmp_path_factory: pytest.TempPathFactory
) -> TrainingReport:
    output = tmp_path_factory.mktemp("trained") / "model"
    return fine_tune(tiny_beir, random_base, output, TINY, retriever=tiny_retriever, show_progress_bar=False)


@pytest.mark.slow
def test_one_epoch_lowers_the_loss_of_the_groups_it_trained_on(
    trained: TrainingReport, tiny_beir: Path, random_base: str, tiny_retriever: FaissRetriever
) -> None:
    groups = first_epoch_groups(tiny_beir, tiny_retriever, TINY)
    assert len(groups) == trained.positive_pairs
    assert len(trained.epochs[0].step_losses) == math.ceil(len(groups) / TINY.groups_per_step)
    before = listwise_loss_of(random_base, groups, TINY.max_length)
    after = listwise_loss_of(trained.output_dir, groups, TINY.max_length)
    assert after < before - 0.03, (before, after)


@pytest.mark.slow
def test_the_same_seed_gives_the_same_model(
    trained: TrainingReport, tiny_beir: Path, random_base: str, tiny_retriever: FaissRetriever, tmp_path: Path
) -> None:
    """Issue 32: a fixed seed, the same data and the same machine give the same weights, bit for bit."""
    again = fine_tune(tiny_beir, random_base, tmp_path / "again", TINY, retriever=tiny_retriever,
                      show_progress_bar=False)  # fmt: skip
    first = load_file(str(Path(trained.output_dir) / "model.safetensors"))
    second = load_file(str(tmp_path / "again" / "model.safetensors"))
    assert first.keys() == second.keys()
    assert all(torch.equal(first[name], second[name]) for name in first)
    assert again.epochs[-1].step_losses == trained.epochs[-1].step_losses


def test_the_saved_model_reloads_in_our_core_and_in_sentence_transformers(trained: TrainingReport) -> None:
    from sentence_transformers import CrossEncoder

    query, documents = "Statins lower LDL cholesterol.", ["Statins inhibit HMG-CoA reductase.", "Malaria parasites."]
    ours = Reranker(trained.output_dir, precision="fp32").score(query, documents)
    theirs = CrossEncoder(trained.output_dir).predict([(query, d) for d in documents])
    assert max(abs(a - float(b)) for a, b in zip(ours, theirs, strict=True)) < 1e-4
    output = Path(trained.output_dir)
    assert not (output / "checkpoints").exists()
    assert json.loads((output / "training.json").read_text())["best_epoch"] == trained.best_epoch == 1
    card = (output / "README.md").read_text()
    assert Path(trained.base_model).name in card and "listwise softmax" in card and "dev NDCG@10" in card
    assert trained.dev_queries == 4 and 0.0 <= (trained.epochs[0].dev_ndcg_at_10 or -1) <= 1.0


@pytest.mark.slow
def test_a_bi_encoder_base_gets_a_fresh_head_and_learns_within_one_epoch(
    tiny_beir: Path,
    bi_encoder_path: str,
    tiny_retriever: FaissRetriever,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = TrainingConfig(
        epochs=1, max_length=64, learning_rate=1e-4, head_learning_rate=1e-2, warmup_ratio=0.0, dev_queries=0
    )
    with caplog.at_level(logging.WARNING, logger="rerank_plugins"):
        report = fine_tune(
            tiny_beir, bi_encoder_path, tmp_path / "out", config, retriever=tiny_retriever, show_progress_bar=False
        )
    assert report.fresh_head and "fresh one-logit head" in caplog.text
    losses = report.epochs[0].step_losses
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5 - 0.15, losses
    config_st = json.loads((tmp_path / "out" / "config_sentence_transformers.json").read_text())
    assert config_st["activation_fn"].endswith("Identity")
    ranked = Reranker(str(tmp_path / "out")).rank("Statins lower LDL.", ["Malaria is spread.", "Statins and LDL."])
    assert len(ranked) == 2


def test_hard_negatives_leave_out_positives_and_every_group_has_the_same_size(
    tiny_beir: Path, tiny_retriever: FaissRetriever
) -> None:
    data = load_training_data(tiny_beir, dev_queries=0)
    hard = mine_hard_negatives(tiny_retriever, data.train, depth=10)
    for query_id, negatives in hard.items():
        assert negatives and not {d for d, s in data.train.qrels[query_id].items() if s > 0} & set(negatives)
    groups = sample_groups(data.train, hard, 5, 2, random.Random(0))
    assert len(groups) == data.positive_pairs and {len(g.documents) for g in groups} == {8}
    positives = {data.train.corpus[d] for judged in data.train.qrels.values() for d, s in judged.items() if s > 0}
    assert all(g.documents[0] in positives and len(set(g.documents)) == 8 for g in groups)


@pytest.mark.slow
def test_cli_train_writes_a_model(tiny_beir: Path, random_model: str, tmp_path: Path, capsys) -> None:
    code = main(
        [
            "train",
            *("--data", str(tiny_beir), "--base", random_model, "--out", str(tmp_path / "m")),
            *("--epochs", "1", "--max-length", "48", "--max-train-queries", "4", "--dev-queries", "4"),
        ]
    )
    report = json.loads((tmp_path / "m" / "training.json").read_text(encoding="utf-8"))
    assert report["mining_precision"] == "fp32"  # whatever the hardware: the same negatives everywhere
    kept, retrieval = report["epochs"][report["best_epoch"] - 1]["dev_ndcg_at_10"], report["dev_retrieval_ndcg_at_10"]
    assert kept < retrieval  # random weights, one short epoch: worse than the bi-encoder's order
    captured = capsys.readouterr()
    assert code == 1 and "worse than the bi-encoder alone" in captured.err and "saved to" in captured.out
    assert "WARNING: this model is worse than no reranking" in (tmp_path / "m" / "README.md").read_text()
    assert (tmp_path / "m" / "model.safetensors").is_file()  # kept for inspection
    again = [
        "train",
        "--data",
        str(tiny_beir),
        "--base",
        random_model,
        "--out",
        str(tmp_path / "m"),
        "--dev-queries",
        "4",
    ]
    assert main(again) == 2
    assert "not empty" in capsys.readouterr().err
    accepted = [
        *again,
        "--out",
        str(tmp_path / "m2"),
        "--epochs",
        "1",
        "--max-length",
        "48",
        "--max-train-queries",
        "4",
    ]
    assert main([*accepted, "--keep-worse"]) == 0  # accepted: exit 0, the warning still printed
    assert "worse than no reranking" in capsys.readouterr().out


# Bad input: counted warnings for what is skipped, clear errors where nothing is left.

CORPUS = {f"d{i}": f"document number {i} about topic {i % 3}" for i in range(12)}
QUERIES = {"q1": "topic one", "q2": "topic two", "q3": "topic zero"}


def test_judgments_on_unknown_ids_are_skipped_with_counts(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    judgments = [("q1", "d1", 1), ("q2", "d2", 1), ("q3", "d3", 1), ("q9", "d1", 1), ("q1", "missing", 1)]
    with caplog.at_level(logging.WARNING):
        data = load_training_data(write_beir(tmp_path, CORPUS, QUERIES, judgments), dev_queries=0)
    assert "skipped 1 judgments on 1 query ids missing" in caplog.text and "'q9'" in caplog.text
    assert "1 judgments on document ids missing" in caplog.text and "'missing'" in caplog.text
    assert data.positive_pairs == 3 and set(data.train.queries) == {"q1", "q2", "q3"}


def test_queries_without_a_positive_are_skipped_with_counts(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    judgments = [("q1", "d1", 1), ("q2", "d2", 0), ("q3", "d3", 2)]
    with caplog.at_level(logging.WARNING):
        data = load_training_data(write_beir(tmp_path, CORPUS, QUERIES, judgments), dev_queries=0)
    assert "skipped 1 of 3 queries with no positive judgment" in caplog.text and "'q2'" in caplog.text
    assert set(data.train.queries) == {"q1", "q3"}


@pytest.mark.parametrize(
    ("corpus", "judgments", "message"),
    [
        ({}, [("q1", "d1", 1)], "holds no documents"),
        (CORPUS, [("q9", "d1", 1), ("q1", "nope", 1)], "gives no query with a positive judgment"),
        (CORPUS, [("q1", "d1", 0)], "gives no query with a positive judgment"),
    ],
    ids=["empty-corpus", "only-unknown-ids", "no-positives"],
)
def test_nothing_to_train_on_is_an_error(tmp_path: Path, corpus, judgments, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_training_data(write_beir(tmp_path, corpus, QUERIES, judgments), dev_queries=0)


def test_a_dev_hold_out_as_large_as_the_data_is_an_error(tmp_path: Path) -> None:
    judgments = [("q1", "d1", 1), ("q2", "d2", 1)]
    with pytest.raises(ValueError, match="would leave none"):
        load_training_data(write_beir(tmp_path, CORPUS, QUERIES, judgments), dev_queries=2)


def test_a_corpus_too_small_for_a_group_is_an_error(tmp_path: Path) -> None:
    small = {d: CORPUS[d] for d in ("d0", "d1", "d2")}
    data = load_training_data(write_beir(tmp_path, small, QUERIES, [("q1", "d1", 1)]), dev_queries=0)
    with pytest.raises(ValueError, match="lower hard_negatives/random_negatives"):
        sample_groups(data.train, {"q1": []}, 5, 2, random.Random(0))


def test_a_retriever_over_other_documents_is_refused(tmp_path: Path, tiny_retriever: FaissRetriever) -> None:
    data = load_training_data(write_beir(tmp_path, CORPUS, QUERIES, [("q1", "d1", 1)]), dev_queries=0)
    with pytest.raises(ValueError, match="built over other documents"):
        mine_hard_negatives(tiny_retriever, data.train, depth=5)


def test_a_multi_label_base_and_a_bad_recipe_are_refused(tmp_path: Path, tiny_beir: Path) -> None:
    three_labels = build_random_cross_encoder(tmp_path / "three", num_labels=3)
    with pytest.raises(ValueError, match="3 labels"):
        fine_tune(tiny_beir, str(three_labels), tmp_path / "out", TINY)
    with pytest.raises(FileNotFoundError, match="No model directory"):
        fine_tune(tiny_beir, str(tmp_path / "nowhere"), tmp_path / "out", TINY)
    for bad in ({"epochs": 0}, {"precision": "int8"}, {"hard_negatives": 0, "random_negatives": 0}):
        with pytest.raises(ValueError):
            TrainingConfig(**bad)  # type: ignore[arg-type]
