"""The ``rerank-plugins`` command: demo, rank, eval, calibrate, bench, train, serve."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from rerank_plugins._version import __version__
from rerank_plugins.cli import bench, calibrate, demo, evaluate, rank, serve, train
from rerank_plugins.cli.options import HelpFormatter

__all__ = ["main"]

DESCRIPTION = (
    "Rerank retrieved documents with a cross-encoder: try it (demo), rank a file (rank), measure it (eval, bench), "
    "calibrate its 0-1 relevance (calibrate), fine-tune it (train) or run it as a rerank service (serve). "
    "'rerank-plugins COMMAND --help' for each."
)

VERBOSE_HELP = "log progress at INFO level, and show the traceback of an error"

COMMANDS = {
    "demo": demo,
    "rank": rank,
    "eval": evaluate,
    "calibrate": calibrate,
    "bench": bench,
    "train": train,
    "serve": serve,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rerank-plugins", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help=VERBOSE_HELP)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, module in COMMANDS.items():
        module.add_parser(commands, name)
    for command in commands.choices.values():
        command.formatter_class = HelpFormatter
        # also after the command name; SUPPRESS keeps the top-level value when it is given only there
        command.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=VERBOSE_HELP)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen command; returns the process exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    try:
        return int(COMMANDS[args.command].run(args))
    except (OSError, ValueError, TypeError, ImportError, RuntimeError) as error:
        if args.verbose:
            logging.getLogger("rerank_plugins").exception("%s failed", args.command)
        print(f"rerank-plugins {args.command}: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
