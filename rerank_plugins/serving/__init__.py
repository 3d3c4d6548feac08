"""The rerank HTTP service (``rerank-plugins serve``), its micro-batching, and Ray Serve / Ray Data helpers.

Needs the ``serve`` extra (FastAPI, uvicorn); the Ray helpers need the ``ray`` extra.
"""

from rerank_plugins.serving.app import create_app
from rerank_plugins.serving.background import serve_in_background
from rerank_plugins.serving.batching import MicroBatcher, Overloaded
from rerank_plugins.serving.limits import ServiceLimits
from rerank_plugins.serving.server import server_config

__all__ = ["MicroBatcher", "Overloaded", "ServiceLimits", "create_app", "serve_in_background", "server_config"]
