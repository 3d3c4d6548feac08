"""The built wheel holds the package and only the data it reads: no tests, notebooks or stray files."""

from __future__ import annotations

import sys
import zipfile
from pathlib import PurePosixPath

SHIPPED_DATA = {"rerank_plugins/data/demo_corpus.jsonl", "rerank_plugins/data/demo_queries.txt"}


def main(wheel: str) -> int:
    names = zipfile.ZipFile(wheel).namelist()
    problems = []
    for name in names:
        top = PurePosixPath(name).parts[0]
        if top.endswith(".dist-info"):
            continue
        if top != "rerank_plugins":
            problems.append(f"{name}: outside the package")
        elif not name.endswith((".py", "py.typed")) and name not in SHIPPED_DATA:
            problems.append(f"{name}: not code and not data the package reads")
    missing = SHIPPED_DATA - set(names)
    problems += [f"{name}: missing" for name in sorted(missing)]
    for problem in problems:
        print(problem, file=sys.stderr)
    print(f"{wheel}: {len(names)} files, {'OK' if not problems else f'{len(problems)} problems'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
