"""The shared shell of the tools' entry points: parse argv, run, turn a UserError into exit code 2."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from ..errors import UserError


def run_tool(parser: argparse.ArgumentParser, body: Callable[[argparse.Namespace], int],
             argv: list[str] | None) -> int:
    """Parse ``argv`` and run ``body``; return its exit code.

    A usage error (argparse) or a :class:`UserError` returns 2 with one message on stderr and no
    traceback; ``--help`` returns 0.
    """
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse has printed the usage or help already
        return exit_.code if isinstance(exit_.code, int) else 2
    try:
        return body(args)
    except UserError as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return err.exit_code
