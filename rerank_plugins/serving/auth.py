"""API-key access control for the rerank service: ``Authorization: Bearer <key>``, compared in constant time.

That is the header the Cohere, Jina and Voyage clients send (and TEI's clients with an auth token).
Liveness and readiness stay open, so an orchestrator can probe without the key.
"""

from __future__ import annotations

import hmac

from rerank_plugins.serving.guard import App, GuardStats, Receive, Scope, Send, refuse

__all__ = ["API_KEY_ENV", "ApiKeyGuard", "OPEN_PATHS"]

API_KEY_ENV = "RERANK_PLUGINS_API_KEY"
OPEN_PATHS = frozenset({"/health", "/live"})


class ApiKeyGuard:
    """Answers 401 to any request but the probes that lacks ``Authorization: Bearer <api_key>``."""

    def __init__(self, app: App, api_key: str, stats: GuardStats) -> None:
        if not api_key or api_key != api_key.strip():
            raise ValueError("the API key must be non-empty, without surrounding spaces")
        self.app = app
        self._key = api_key.encode()
        self.stats = stats

    def _allowed(self, scope: Scope) -> bool:
        sent = next((value for name, value in scope["headers"] if name == b"authorization"), b"")
        scheme, _, token = sent.partition(b" ")
        # compare_digest takes as long for any wrong key of a given length: nothing leaks through timing
        return scheme.lower() == b"bearer" and hmac.compare_digest(token.strip(), self._key)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS or self._allowed(scope):
            await self.app(scope, receive, send)
            return
        self.stats.count(401)
        await refuse(send, 401, "missing or wrong API key: send 'Authorization: Bearer <key>'",
                     {"WWW-Authenticate": 'Bearer realm="rerank-plugins"'})  # fmt: skip
