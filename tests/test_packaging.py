"""pyproject.toml's lower bounds are the versions .ci/oldest installs, and the version has one source."""

from __future__ import annotations

import re

import tomllib
from packaging.version import Version

from rerank_plugins import __version__
from tests.paths import REPO


def _lower_bounds() -> dict[str, Version]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = project["optional-dependencies"]
    requirements = project["dependencies"] + [
        requirement for extra in ("torch", "langchain", "llamaindex", "openvino") for requirement in extras[extra]
    ]
    requirements += [r for r in extras["export"] if r.startswith("nncf")]  # .ci/oldest adds it: OpenVINO's int8
    bounds = {}
    for requirement in requirements:
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?>=([0-9][0-9.]*)", requirement)
        assert match, f"{requirement!r}: every dependency of the core and the adapters has a >= lower bound"
        bounds[match[1].lower()] = Version(match[2])
    return bounds


def test_every_lower_bound_is_pinned_in_the_oldest_constraints() -> None:
    pinned = dict(
        line.split("==")
        for line in (REPO / ".ci" / "oldest-constraints.txt").read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#")
    )
    assert {name.lower(): Version(version) for name, version in pinned.items()} == _lower_bounds()


def test_the_version_is_written_once() -> None:
    pyproject = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    assert 'dynamic = ["version"]' in pyproject and 'attr = "rerank_plugins._version.__version__"' in pyproject
    assert re.fullmatch(r"\d+\.\d+\.\d+", __version__)
    assert f"## {__version__}" in (REPO / "CHANGELOG.md").read_text(encoding="utf-8")
