"""Keeping transformers' chatter down while a model loads, and handing its settings back afterwards.

A load prints a "Loading weights" progress bar, notices such as an unrecognised ``loss_type`` and, for
checkpoints with extra tensors, a "LOAD REPORT" table. Logging levels and progress bars belong to the
user, so nothing is changed for good: the notices are re-logged on our own logger (``DEBUG``, or
``WARNING`` for missing weights and errors) and every setting touched is restored on the way out.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["quiet_loading"]

logger = logging.getLogger("rerank_plugins.loading")

QUIET_BARS = ("Loading weights",)
"""transformers progress bars (by description) hidden while a model loads; download bars stay visible."""


class _Collect(logging.Handler):
    """Keeps the records transformers logs during a load, to be re-logged on our logger."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _hide_bars(previous: Callable[..., Any] | None) -> Callable[..., Any]:
    def hook(factory: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if kwargs.get("desc") in QUIET_BARS:
            kwargs = {**kwargs, "disable": True}
        return previous(factory, args, kwargs) if previous is not None else factory(*args, **kwargs)

    return hook


@contextmanager
def quiet_loading(model: str) -> Iterator[None]:
    """Inside: transformers' notices are collected, not printed, and its load bar is hidden.

    Does nothing when the user has turned transformers' logging to INFO or DEBUG: they asked to see it.
    """
    library = logging.getLogger("transformers")
    if library.getEffectiveLevel() < logging.WARNING:
        yield
        return
    from transformers.utils import logging as transformers_logging

    set_hook = getattr(transformers_logging, "set_tqdm_hook", None)  # transformers >= 5
    collect = _Collect()
    handlers, propagate = library.handlers[:], library.propagate
    library.handlers, library.propagate = [collect], False
    previous_hook = None
    if set_hook is not None:
        previous_hook = set_hook(None)  # read the user's hook, to chain it
        set_hook(_hide_bars(previous_hook))
    try:
        yield
    finally:
        library.handlers, library.propagate = handlers, propagate
        if set_hook is not None:
            set_hook(previous_hook)
        for record in collect.records:
            message = record.getMessage()
            serious = record.levelno >= logging.ERROR or "MISSING" in message
            logger.log(logging.WARNING if serious else logging.DEBUG, "transformers, loading %s: %s", model, message)
