"""Ray: the Serve deployment (2 replicas) answers like the plain service; the Dataset helper like the core."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from rerank_plugins import Reranker
from rerank_plugins.remote import RemoteReranker
from rerank_plugins.serving import create_app
from rerank_plugins.serving.background import serve_in_background as running
from rerank_plugins.serving.ray_data import rerank_dataset
from rerank_plugins.serving.ray_serve import ray_application
from tests.serving.servers import free_port

TOPICS = ["statins and LDL cholesterol", "malaria transmission", "vitamin D and bone density", "sleep and memory"]
DOCUMENTS = [
    "Statins inhibit HMG-CoA reductase.",
    "Anopheles mosquitoes carry Plasmodium.",
    "Vitamin D supplements in older adults.",
    "Slow-wave sleep consolidates memory.",
]


@pytest.fixture(scope="module")
def ray_session() -> Iterator[None]:
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    yield
    ray.shutdown()


@pytest.mark.slow
def test_serve_deployment_with_two_replicas_answers_like_the_plain_service(
    random_model: str, ray_session: None
) -> None:
    from ray import serve

    options = {"model": random_model, "precision": "fp32"}
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    try:
        serve.run(ray_application(options, replicas=2, cpus_per_replica=0.5), name="rerank", route_prefix="/")
        states = serve.status().applications["rerank"].deployments["rerank"].replica_states
        assert states.get("RUNNING") == 2
        on_ray = RemoteReranker(f"http://127.0.0.1:{port}", max_retries=5, backoff=0.5)
        with running(create_app(Reranker(**options))) as url:
            plain = RemoteReranker(url)
            for topic in TOPICS * 3:
                want, got = plain.rank(topic, DOCUMENTS), on_ray.rank(topic, DOCUMENTS)
                assert [r.index for r in got] == [r.index for r in want]
                assert [r.score for r in got] == pytest.approx([r.score for r in want], abs=1e-5)
    finally:
        serve.shutdown()


@pytest.mark.slow
def test_dataset_helper_reranks_600_rows_like_the_local_core(random_model: str, ray_session: None) -> None:
    import ray

    rows = [
        {"query": f"{TOPICS[i % 4]} #{i}", "documents": DOCUMENTS[i % 3 :] + DOCUMENTS[: i % 3]} for i in range(600)
    ]
    options = {"model": random_model, "precision": "fp32", "max_length": 64}
    dataset = rerank_dataset(
        ray.data.from_items(rows), options, top_n=3, batch_size=150, concurrency=2, cpus_per_worker=0.5
    )
    ranked = sorted(dataset.take_all(), key=lambda row: int(row["query"].rsplit("#", 1)[1]))
    local = Reranker(**options).rank_many([r["query"] for r in rows], [r["documents"] for r in rows], top_n=3)
    assert len(ranked) == 600
    for row, ranking in zip(ranked, local, strict=True):
        assert list(row["ranked_indices"]) == [r.index for r in ranking]
        assert list(row["scores"]) == pytest.approx([r.score for r in ranking], abs=1e-5)
    with pytest.raises(ValueError, match="no column"):
        rerank_dataset(ray.data.from_items(rows[:2]), options, documents_column="candidates")
