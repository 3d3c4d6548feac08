"""Ray Serve: the same rerank service as N replicas behind Ray's router (``rerank-plugins serve --ray``)."""

from __future__ import annotations

import logging
from typing import Any

from rerank_plugins._optional import require
from rerank_plugins.options import check_options
from rerank_plugins.reranker import Reranker
from rerank_plugins.serving.app import create_app
from rerank_plugins.serving.limits import ServiceLimits

__all__ = ["ray_application", "run_ray_service"]

logger = logging.getLogger(__name__)


def ray_application(
    reranker_options: dict[str, Any],
    limits: ServiceLimits | None = None,
    *,
    replicas: int = 2,
    cpus_per_replica: float = 1.0,
    app_options: dict[str, Any] | None = None,
) -> Any:
    """A Ray Serve application: ``replicas`` copies of :func:`create_app`, each with its own ``Reranker``.

    ``reranker_options`` are ``Reranker`` keyword arguments (``model``, ``precision``, ...); each replica
    builds its app (and loads the model) when Ray starts it. ``app_options`` go to ``create_app``
    (``model_name``, ``aliases``, ``api_key``).
    """
    reranker_options = check_options(reranker_options)  # a misspelt option fails here, not in a replica
    require("ray.serve", "ray")
    from ray import serve

    if replicas < 1:
        raise ValueError(f"replicas must be >= 1, got {replicas!r}")

    def build_app() -> Any:
        return create_app(Reranker(**reranker_options), limits, **(app_options or {}))

    ingress = serve.ingress(build_app)()
    deployment = serve.deployment(
        name="rerank", num_replicas=replicas, ray_actor_options={"num_cpus": cpus_per_replica}
    )(ingress)
    return deployment.bind()


def run_ray_service(
    reranker_options: dict[str, Any],
    limits: ServiceLimits | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    replicas: int = 2,
    cpus_per_replica: float = 1.0,
    blocking: bool = True,
    app_options: dict[str, Any] | None = None,
) -> None:
    """Start Ray (or join the running cluster) and serve the application on ``host:port``."""
    ray = require("ray", "ray")
    from ray import serve

    if not ray.is_initialized():
        ray.init(ignore_reinit_error=True, include_dashboard=False)
    serve.start(http_options={"host": host, "port": port})
    application = ray_application(
        reranker_options, limits, replicas=replicas, cpus_per_replica=cpus_per_replica, app_options=app_options
    )
    logger.info(
        "serving %s with %d Ray Serve replicas on http://%s:%d", reranker_options.get("model"), replicas, host, port
    )
    serve.run(application, name="rerank", route_prefix="/", blocking=blocking)
