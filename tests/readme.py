"""The README's fenced code blocks, read as a user reads them: section, language, code, stated output.

A ```` ```text ```` block right after a ```` ```python ```` block is that block's stated output, which
the tests compare with what the code prints.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
FENCE = re.compile(r"^```(\w*)\s*$")


@dataclass(frozen=True)
class Block:
    """One fenced block: the heading it sits under, its language and first line in the README, its code."""

    section: str
    language: str
    line: int
    code: str
    output: str | None = None

    @property
    def name(self) -> str:
        return f"{self.section} (README.md:{self.line})"


def readme_blocks(path: Path = README) -> list[Block]:
    """Every fenced block of ``path``, each python block carrying the ```text block that follows it."""
    blocks: list[Block] = []
    section, language, start, lines = "", None, 0, []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        fence = FENCE.match(line)
        if language is None:
            if line.startswith("#"):
                section = line.lstrip("#").strip()
            elif fence:
                language, start, lines = fence.group(1), number + 1, []
            continue
        if line.strip() == "```":
            code = "\n".join(lines) + "\n"
            previous = blocks[-1] if blocks else None
            if language == "text" and previous is not None and previous.language == "python" and not previous.output:
                blocks[-1] = Block(previous.section, previous.language, previous.line, previous.code, code)
            else:
                blocks.append(Block(section, language, start, code))
            language = None
        else:
            lines.append(line)
    return blocks


def python_sections(path: Path = README) -> dict[str, list[Block]]:
    """The python blocks by section, in README order: a section's blocks share one namespace."""
    sections: dict[str, list[Block]] = {}
    for block in readme_blocks(path):
        if block.language == "python":
            sections.setdefault(block.section, []).append(block)
    return sections


def command_lines(path: Path = README) -> list[tuple[Block, str]]:
    """Each ``rerank-plugins ...`` command of the bash blocks (continuation lines joined, comments cut)."""
    found = []
    for block in readme_blocks(path):
        if block.language != "bash":
            continue
        for line in block.code.replace("\\\n", " ").splitlines():
            command = line.split(" # ")[0].strip()
            if "rerank-plugins " in command and not command.startswith(("pip ", "#")):
                found.append((block, command[command.index("rerank-plugins ") :]))
    return found
