"""The client's credentials: used for every request, never shown or stored (repr, errors, logs, ``options()``)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit, urlunsplit

__all__ = ["API_KEY_ENV", "SECRET_HEADERS", "Credentials", "split_credentials"]

API_KEY_ENV = "RERANK_PLUGINS_API_KEY"
"""Read for the key when none is given; ``rerank-plugins serve --api-key`` defaults to it too."""

SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "x-api-key", "api-key"})
"""Headers that carry credentials: sent, but kept out of ``options()`` and so out of serialised adapters."""


@dataclass(frozen=True)
class Credentials:
    """What authenticates the client: secret headers and the ``user:password`` of the URL (HTTP Basic)."""

    headers: dict[str, str] = field(repr=False)
    basic: tuple[str, str] | None = field(repr=False)


def _without_userinfo(url: str) -> tuple[str, tuple[str, str] | None]:
    """``url`` without ``user:password@`` and the (decoded) pair it held, if any."""
    try:
        parts = urlsplit(url)
    except ValueError:
        raise ValueError("url is not a valid URL") from None
    if "@" not in parts.netloc:
        return url, None
    userinfo, _, host = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    return urlunsplit(parts._replace(netloc=host)), (unquote(user), unquote(password))


def _checked_key(api_key: object, where: str) -> str:
    if not isinstance(api_key, str) or not api_key or api_key != api_key.strip() or not api_key.isprintable():
        raise ValueError(f"{where} must be a non-empty printable str without surrounding whitespace")
    return api_key


def split_credentials(
    url: str, api_key: str | None, headers: Mapping[str, str] | None
) -> tuple[str, dict[str, str], Credentials]:
    """The URL and headers safe to show and store, and the credentials taken out of them.

    ``api_key`` becomes ``Authorization: Bearer``; without it, and without any other credentials,
    ``$RERANK_PLUGINS_API_KEY`` is used. Two sources of credentials at once are refused as ambiguous.
    """
    shown_url, basic = _without_userinfo(url)
    plain = {name: value for name, value in (headers or {}).items() if name.lower() not in SECRET_HEADERS}
    secret = {name: value for name, value in (headers or {}).items() if name not in plain}
    has_authorization = any(name.lower() == "authorization" for name in secret)
    if (api_key is not None) + (basic is not None) + has_authorization > 1:
        raise ValueError("pass one of api_key=, user:password@ in the url, or an Authorization header")
    if api_key is not None:
        secret["Authorization"] = f"Bearer {_checked_key(api_key, 'api_key')}"
    elif basic is None and not has_authorization and os.environ.get(API_KEY_ENV):
        secret["Authorization"] = f"Bearer {_checked_key(os.environ[API_KEY_ENV], API_KEY_ENV)}"
    return shown_url, plain, Credentials(secret, basic)
