"""Keeps the ``slow`` marker honest: after a run, names the tests whose time disagrees with their marker.

A test that takes ``SLOW_SECONDS`` or more (setup, call and teardown) on the 2-core CI machine is ``slow``, so
``-m "not slow"`` stays the everyday tier. Nothing fails on time (machines are noisy); the summary says what
to re-mark. Imported by ``tests/conftest.py`` so its hooks run in every session, xdist workers' reports included.
"""

from __future__ import annotations

from collections import defaultdict

import pytest

SLOW_SECONDS = 3.0
"""A test at or above this many seconds is ``slow``."""

SLOW_FIXTURES = {
    "results": "runs every README block in fresh processes",
    "trained": "fine-tunes a model for an epoch",
    "families": "builds a random-weight model of every architecture family",
    "server": "starts a real rerank-plugins serve process",
}
"""Fixtures that alone take ``SLOW_SECONDS`` or more: a test that needs one is slow, whichever test pays for it."""

_seconds: defaultdict[str, float] = defaultdict(float)
_marked: dict[str, bool] = {}


def mark_slow(items: list[pytest.Item]) -> None:
    """Marks the notebooks (``--nbmake notebooks``: each a whole retrieve-rerank-evaluate path) and every test
    that needs a slow fixture."""
    for item in items:
        if item.path.suffix == ".ipynb" or SLOW_FIXTURES.keys() & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _seconds[report.nodeid] += report.duration
    _marked[report.nodeid] = "slow" in report.keywords


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _seconds:  # nothing ran (--collect-only, or everything deselected)
        return
    unmarked = sorted(
        ((seconds, node) for node, seconds in _seconds.items() if seconds >= SLOW_SECONDS and not _marked[node]),
        reverse=True,
    )
    marked = [node for node in _seconds if _marked[node]]
    fast_seconds = sum(seconds for node, seconds in _seconds.items() if not _marked[node])
    terminalreporter.write_sep("-", "slow marker")
    terminalreporter.write_line(
        f"{len(marked)} tests marked slow took {sum(_seconds[n] for n in marked):.0f} s; "
        f"{len(_seconds) - len(marked)} others took {fast_seconds:.0f} s (summed over workers)"
    )
    for seconds, node in unmarked:
        terminalreporter.write_line(f"not marked slow but took {seconds:.1f} s: {node}")
