"""Every API shape the service speaks, its bad inputs and faults, and its operations surface.

In-process services over the random-weight MiniLM-L6 model; the official clients are proven against a
real process in ``test_service_clients``, concurrency and shutdown in ``test_service_hostile``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from rerank_plugins import Reranker
from rerank_plugins.remote import RemoteReranker
from rerank_plugins.serving import ServiceLimits, create_app
from rerank_plugins.serving.background import serve_in_background
from tests.serving.servers import raw_exchange
from tests.serving.shapes import SHAPES, request_in, scores_in

KEY = "k-3141"
AUTH = {"Authorization": f"Bearer {KEY}"}
DOCS = ["statins lower cholesterol", "malaria is spread by mosquitoes", "vitamin D and bone density"]
LONG = "word " * 700  # cut to fit a 512-token pair


@pytest.fixture(scope="module")
def url(served_core: Reranker) -> Iterator[str]:
    limits = ServiceLimits(max_documents=5, max_document_bytes=8000)
    app = create_app(served_core, limits, model_name="served", aliases=["alias"], api_key=KEY)
    with serve_in_background(app) as base:
        yield base


def post(url: str, path: str, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(f"{url}{path}", json=body, headers=headers if headers is not None else AUTH, timeout=60)


@pytest.mark.parametrize("shape", SHAPES)
def test_every_shape_gives_the_local_scores(url: str, served_core: Reranker, shape: str) -> None:
    path, body = request_in(shape, "cholesterol drugs", DOCS)
    answer = post(url, path, body)
    assert answer.status_code == 200, answer.text
    kind, got = scores_in(shape, answer.json(), len(DOCS))
    want = sorted(served_core.rank("cholesterol drugs", DOCS), key=lambda row: row.index)
    assert got == pytest.approx([getattr(row, kind) for row in want], abs=1e-5)


@pytest.mark.parametrize("api", ["rerank-plugins", "tei"])
def test_our_remote_client_speaks_both_of_its_apis_to_the_service(url: str, served_core: Reranker, api: Any) -> None:
    remote = RemoteReranker(url, api=api, headers=AUTH)
    got, want = remote.rank("cholesterol drugs", DOCS), served_core.rank("cholesterol drugs", DOCS)
    assert [row.index for row in got] == [row.index for row in want]
    assert [row.score for row in got] == pytest.approx([row.score for row in want], abs=1e-5)


def test_each_shape_answers_in_its_own_layout(url: str, served_core: Reranker) -> None:
    best = served_core.rank("cholesterol drugs", DOCS)
    order = [row.index for row in best]
    tei = post(url, "/rerank", {"query": "cholesterol drugs", "texts": DOCS, "return_text": True}).json()
    assert [row["index"] for row in tei] == order  # a bare array, best first, 0-1 scores by default
    assert [row["score"] for row in tei] == pytest.approx([row.relevance_score for row in best], abs=1e-5)
    assert [row["text"] for row in tei] == [DOCS[i] for i in order]

    v2 = post(url, "/v2/rerank", {"model": "alias", "query": "cholesterol drugs", "documents": DOCS, "top_n": 2})
    body = v2.json()
    assert [row["index"] for row in body["results"]] == order[:2] and body["id"] == v2.headers["x-request-id"]
    assert body["meta"]["api_version"]["version"] == "2" and body["model"] == "served"
    assert body["usage"]["total_tokens"] == sum(served_core.token_cost("cholesterol drugs", DOCS).pair_tokens)

    v1 = post(url, "/v1/rerank", {"query": "cholesterol drugs", "documents": [{"text": d} for d in DOCS],
                                  "return_documents": True}).json()  # fmt: skip
    assert [row["document"] for row in v1["results"]] == [{"text": DOCS[i]} for i in order]

    voyage = post(url, "/v1/rerank", {"query": "cholesterol drugs", "documents": DOCS, "top_k": 1,
                                      "return_documents": True}).json()  # fmt: skip
    assert voyage["object"] == "list" and voyage["data"] == [
        {
            "index": order[0],
            "relevance_score": pytest.approx(best[0].relevance_score, abs=1e-5),
            "document": DOCS[order[0]],
        }
    ]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/rerank", {"query": 5, "documents": DOCS}, "query"),
        ("/rerank", {"query": "q"}, "documents"),
        ("/rerank", {"query": "q", "texts": "not a list"}, "texts"),
        ("/rerank", {"query": "q", "texts": DOCS, "raw_scores": "yes"}, "raw_scores"),
        ("/v2/rerank", {"query": "q", "documents": [1, 2]}, "documents"),
        ("/v2/rerank", {"query": "q", "documents": DOCS, "top_n": 0}, "top_n"),
        ("/v1/rerank", {"documents": DOCS}, "query"),
        ("/v1/rerank", {"query": "q", "documents": DOCS, "top_k": "3"}, "top_k"),
        ("/v2/rerank", {"query": "q", "documents": DOCS, "max_tokens_per_doc": -1}, "max_tokens_per_doc"),
    ],
)
def test_wrong_types_and_missing_fields_get_422_naming_the_field(url: str, path: str, body: Any, field: str) -> None:
    answer = post(url, path, body)
    assert answer.status_code == 422
    assert any(field in item["loc"] for item in answer.json()["detail"]), answer.json()


def test_a_wrong_document_is_named_by_its_position_and_json_kind_never_by_a_class_of_ours(url: str) -> None:
    for documents, named in [(["a", 3], "documents[1] is a number"), ([{"text": 5}], "documents[0] is an object")]:
        answer = post(url, "/v2/rerank", {"query": "q", "documents": documents})
        assert answer.status_code == 422 and named in answer.text and "Document" not in answer.text, answer.text
    mixed = post(url, "/v2/rerank", {"query": "q", "documents": ["a", {"text": "b", "id": 7}]})
    assert mixed.status_code == 200 and len(mixed.json()["results"]) == 2


def test_unknown_fields_are_ignored_in_compatible_shapes_and_refused_in_ours(url: str) -> None:
    extra = {"priority": 1, "rank_fields": ["text"], "max_chunks_per_doc": 3}
    for shape in SHAPES[1:]:
        path, body = request_in(shape, "q", DOCS)
        assert post(url, path, {**body, **extra}).status_code == 200, shape
    refused = post(url, "/rerank", {"query": "q", "documents": DOCS, "priority": 1})
    assert refused.status_code == 422 and refused.json()["detail"][0]["type"] == "extra_forbidden"


def test_oversize_requests_get_413_in_every_shape(url: str) -> None:
    for shape in SHAPES:
        path, body = request_in(shape, "q", [f"doc {i}" for i in range(6)])
        answer = post(url, path, body)
        assert answer.status_code == 413 and "6 documents exceed the limit of 5" in answer.json()["detail"], shape


@pytest.mark.parametrize("path", ["/rerank", "/v1/rerank", "/v2/rerank"])
def test_a_20_mib_body_is_refused_before_it_is_read(url: str, path: str) -> None:
    port = int(url.rsplit(":", 1)[1])
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\nContent-Length: 20971520\r\n\r\n"
    answer, closed = raw_exchange(port, head.encode() + b'{"query": "' + b"x" * 65536, send_all=False)
    assert answer.startswith(b"HTTP/1.1 413") and closed


def test_model_names_are_checked_and_aliases_accepted(url: str) -> None:
    for shape in ("rerank-plugins", "cohere-v2", "cohere-v1", "voyage"):
        path, body = request_in(shape, "q", DOCS)
        for name in ("served", "alias"):
            assert post(url, path, {**body, "model": name}).status_code == 200
        wrong = post(url, path, {**body, "model": "/srv/models/other"})
        assert wrong.status_code == 404 and "'/srv/models/other' is not served here" in wrong.json()["detail"]
        assert "'served'" in wrong.json()["detail"]


def test_evidence_spans_come_back_in_ours_and_as_an_extra_field_in_cohere_and_jina(
    url: str, served_core: Reranker
) -> None:
    documents = [*DOCS, LONG]
    want = {row.index: list(row.span) for row in served_core.rank("cholesterol drugs", documents) if row.span}
    assert want[3][1] < len(LONG.rstrip())  # the long document was cut: its span says where
    bodies = {
        "/rerank": {"query": "cholesterol drugs", "documents": documents},
        "/v2/rerank": {"query": "cholesterol drugs", "documents": documents},
        "/v1/rerank": {"query": "cholesterol drugs", "documents": [{"text": d} for d in documents]},
    }
    for path, body in bodies.items():
        answer = post(url, path, body).json()
        assert {row["index"]: row["span"] for row in answer["results"]} == want, path
    remote = RemoteReranker(url, headers=AUTH).rank("cholesterol drugs", documents)
    assert {row.index: list(row.span) for row in remote if row.span} == want
    voyage = post(url, "/v1/rerank", {"query": "q", "documents": DOCS, "top_k": 1}).json()
    assert "span" not in voyage["data"][0]  # Voyage's shape stays as its SDK parses it


def test_truncation_is_never_silent(url: str, served_core: Reranker) -> None:
    documents = ["short one", LONG]
    lost = served_core.token_cost("q", documents).truncated_tokens[1]
    assert lost > 0
    ours = post(url, "/rerank", {"query": "q", "documents": documents}).json()["results"]
    assert {row["index"]: row["truncated_tokens"] for row in ours} == {0: 0, 1: lost}
    for path, body in [
        ("/rerank", {"query": "q", "texts": documents, "truncate": False}),
        ("/v1/rerank", {"query": "q", "documents": documents, "truncation": False}),
    ]:
        refused = post(url, path, body)
        assert refused.status_code == 413 and f"documents[1] is {lost} tokens over" in refused.json()["detail"]
        allowed = post(url, path, {**body, "truncate" if "texts" in body else "truncation": True})
        assert allowed.status_code == 200
    cohere = post(url, "/v2/rerank", {"query": "q", "documents": documents}).json()
    assert cohere["meta"]["warnings"] == ["1 of 2 documents were cut to fit the model's 512-token pairs"]


def test_max_tokens_per_doc_cuts_each_document_first(url: str, served_core: Reranker) -> None:
    documents = ["the blood of adults and children", "malaria"]
    answer = post(url, "/v2/rerank", {"query": "q", "documents": documents, "max_tokens_per_doc": 3}).json()
    (cut, lost), whole = served_core.clip_documents(documents, 3)
    assert cut == "the blood of" and lost == 3 and whole == ("malaria", 0)
    got = {row["index"]: row["relevance_score"] for row in answer["results"]}
    assert got[0] == pytest.approx(served_core.rank("q", [cut])[0].relevance_score, abs=1e-5)
    assert answer["meta"]["warnings"] == ["1 of 2 documents were cut to max_tokens_per_doc=3"]


def test_the_api_key_is_required_everywhere_but_the_probes(url: str) -> None:
    path, body = request_in("cohere-v2", "q", DOCS)
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}, {"Authorization": f"Basic {KEY}"}):
        refused = post(url, path, body, headers)
        assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Bearer")
        assert "API key" in refused.json()["detail"]
    for route in ("/info", "/metrics", "/docs", "/openapi.json"):
        assert httpx.get(f"{url}{route}").status_code == 401
        assert httpx.get(f"{url}{route}", headers=AUTH).status_code == 200
    assert httpx.get(f"{url}/live").status_code == httpx.get(f"{url}/health").status_code == 200


def test_request_ids_come_back_and_name_the_access_line(url: str, caplog: pytest.LogCaptureFixture) -> None:
    path, body = request_in("cohere-v2", "q", DOCS)
    with caplog.at_level(logging.INFO, logger="rerank_plugins.serving.access"):
        sent = post(url, path, body, {**AUTH, "X-Request-Id": "trace-42"})
        made = post(url, path, body, {**AUTH, "X-Request-Id": "bad id\twith spaces"})
    assert sent.headers["x-request-id"] == sent.json()["id"] == "trace-42"
    assert made.headers["x-request-id"] != "bad id\twith spaces" and len(made.headers["x-request-id"]) == 32
    lines = [record.getMessage() for record in caplog.records if record.name == "rerank_plugins.serving.access"]
    assert any('"POST /v2/rerank" 200' in line and line.endswith("id=trace-42") for line in lines), lines
    assert not any(KEY in line for line in lines)


def metric(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


def test_metrics_count_requests_passes_work_and_refusals(url: str) -> None:
    before = httpx.get(f"{url}/metrics", headers=AUTH).text
    documents = [f"fresh passage {i}" for i in range(4)]
    for _ in range(3):
        assert post(url, "/v2/rerank", {"query": "metrics", "documents": documents}).status_code == 200
    post(url, "/v2/rerank", {"query": "q", "documents": [f"d{i}" for i in range(9)]})  # 413
    httpx.get(f"{url}/wp-admin/../../etc/passwd", headers=AUTH)  # counted as "other", never by its path
    after = httpx.get(f"{url}/metrics", headers=AUTH)
    assert after.headers["content-type"].startswith("text/plain")
    text = after.text

    def grew(name: str, **labels: str) -> float:
        return metric(text, name, **labels) - metric(before, name, **labels)

    assert grew("rerank_requests_total", endpoint="/v2/rerank", status="200") == 3
    assert grew("rerank_requests_total", endpoint="/v2/rerank", status="413") == 1
    assert grew("rerank_requests_total", endpoint="other", status="404") == 1
    assert grew("rerank_refused_total", status="413") == 1
    assert grew("rerank_pairs_scored_total") == 12
    assert grew("rerank_tokens_scored_total") > 12 and grew("rerank_batch_pairs_count") >= 1
    assert grew("rerank_request_duration_seconds_count", endpoint="/v2/rerank") == 4
    assert metric(text, "rerank_queue", unit="requests") == 0 and metric(text, "rerank_ready") == 1
    assert "etc/passwd" not in text


class _SlowToWarm(Reranker):
    """A real core whose first scoring waits for a gate: the service stays warming until it opens."""

    gate = threading.Event()

    def pair_scores(self, *args: Any, **kwargs: Any) -> Any:
        self.gate.wait(30)
        return super().pair_scores(*args, **kwargs)


def test_live_answers_at_once_and_health_only_when_warm(random_model: str) -> None:
    core = _SlowToWarm(random_model, runtime="torch", precision="fp32")
    core.gate.clear()
    app = create_app(core)
    with serve_in_background(app, wait_ready=False) as base:
        assert httpx.get(f"{base}/live").status_code == 200
        warming = httpx.get(f"{base}/health")
        assert warming.status_code == 503 and warming.json() == {"status": "warming", "ready": False}
        core.gate.set()
        for _ in range(200):
            if httpx.get(f"{base}/health").status_code == 200:
                break
            time.sleep(0.05)
        assert httpx.get(f"{base}/health").json()["ready"] is True
        app.state.lifecycle.draining, app.state.lifecycle.ready = True, False  # what SIGTERM does
        draining = httpx.get(f"{base}/health")
        assert draining.status_code == 503 and draining.json()["status"] == "draining"
        refused = httpx.post(f"{base}/v2/rerank", json={"query": "q", "documents": DOCS})
        assert refused.status_code == 503 and refused.headers["retry-after"] == "1"


class _Gated(Reranker):
    """A real core whose passes wait for a gate (the warm-up excepted), so a test can hold the worker."""

    gate = threading.Event()
    warmed = False

    def pair_scores(self, *args: Any, **kwargs: Any) -> Any:
        if self.warmed:
            self.gate.wait(30)
        self.warmed = True
        return super().pair_scores(*args, **kwargs)


def test_overload_gives_503_with_retry_after_in_every_shape(random_model: str) -> None:
    core = _Gated(random_model, runtime="torch", precision="fp32")
    core.gate.clear()
    with serve_in_background(create_app(core, ServiceLimits(max_queue=1, max_wait_ms=0))) as base:

        async def scenario() -> list[httpx.Response]:
            async with httpx.AsyncClient(timeout=60) as client:
                body = {"query": "q", "documents": ["a", "b"]}
                busy = asyncio.create_task(client.post(f"{base}/rerank", json=body))
                await asyncio.sleep(0.5)  # held at the gate
                waiting = asyncio.create_task(client.post(f"{base}/rerank", json=body))
                await asyncio.sleep(0.5)  # fills the queue
                refused = []
                for shape in SHAPES:
                    path, request = request_in(shape, "q", ["a", "b"])
                    refused.append(await client.post(f"{base}{path}", json=request))
                core.gate.set()
                return [*refused, await busy, await waiting]

        answers = asyncio.run(scenario())
    for shape, refused in zip(SHAPES, answers, strict=False):
        assert refused.status_code == 503 and refused.headers["retry-after"] == "1", shape
        assert "overloaded" in refused.json()["detail"]
    assert [answer.status_code for answer in answers[-2:]] == [200, 200]


def test_serve_warns_when_it_listens_beyond_loopback_without_a_key(tmp_path: Any) -> None:
    command = [sys.executable, "-m", "rerank_plugins.cli", "serve", "--host", "0.0.0.0", "--model", str(tmp_path)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, env=_without_key())
    assert result.returncode != 0  # an empty directory is not a model: it fails before the port opens
    assert "serving on 0.0.0.0 without an API key" in result.stderr and "--api-key" in result.stderr
    keyed = subprocess.run([*command, "--api-key", "s3cret"], capture_output=True, text=True, timeout=120)
    assert "without an API key" not in keyed.stderr and "s3cret" not in keyed.stderr


def _without_key() -> dict[str, str]:
    return {name: value for name, value in os.environ.items() if name != "RERANK_PLUGINS_API_KEY"}
