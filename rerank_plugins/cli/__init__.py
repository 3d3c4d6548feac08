"""The ``rerank-plugins`` command: demo, rank, eval, calibrate, bench, train, export, serve.

Only the chosen command's module is imported (``cli.commands``), so ``--help`` loads no model stack.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterable, Sequence

from rerank_plugins._version import __version__
from rerank_plugins.cli.commands import COMMANDS
from rerank_plugins.cli.formatting import HelpFormatter

__all__ = ["main"]

DESCRIPTION = (
    "Rerank retrieved documents with a cross-encoder: try it (demo), rank a file (rank), measure it (eval, bench), "
    "calibrate its 0-1 relevance (calibrate), fine-tune it (train), export it to run without torch (export) or run "
    "it as a rerank service (serve). "
    "'rerank-plugins COMMAND --help' for each."
)

VERBOSE_HELP = "log progress at INFO level, and show the traceback of an error"



def build_parser(full: Iterable[str] | None = None) -> argparse.ArgumentParser:
    """The parser, with the options of the commands in ``full`` (``None``: every command); the others are listed
    by name and help line only, without importing their modules."""
    built = set(COMMANDS if full is None else full)
    parser = argparse.ArgumentParser(prog="rerank-plugins", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help=VERBOSE_HELP)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, command in COMMANDS.items():
        if name in built:
            command.load().add_parser(commands, name)
        else:
            commands.add_parser(name, help=command.help, description=command.help)
    for subparser in commands.choices.values():
        subparser.formatter_class = HelpFormatter
        # also after the command name; SUPPRESS keeps the top-level value when it is given only there
        subparser.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=VERBOSE_HELP)
    return parser


def _chosen(argv: Sequence[str]) -> list[str]:
    """The command ``argv`` names (its first word that is not an option), as a list of zero or one."""
    words = [word for word in argv if not word.startswith("-")]
    return words[:1] if words and words[0] in COMMANDS else []


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen command; returns the process exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(_chosen(argv)).parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    try:
        return int(COMMANDS[args.command].load().run(args))
    except (OSError, ValueError, TypeError, ImportError, RuntimeError) as error:
        if args.verbose:
            logging.getLogger("rerank_plugins").exception("%s failed", args.command)
        print(f"rerank-plugins {args.command}: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
