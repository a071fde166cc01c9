"""User-facing errors.

Every mistake a user can make (a wrong flag, config, checkpoint or input file) raises a subclass of
:class:`UserError`. The command line prints its message as one line (plus the fix) and exits with
``exit_code``; no traceback is shown unless ``--debug`` is given.
"""

from __future__ import annotations

from collections.abc import Iterable


class UserError(Exception):
    """An error caused by user input, reported without a traceback.

    Args:
        message: what is wrong, naming the path or value involved.
        fix: how to fix it (optional, printed after the message).
    """

    exit_code: int = 2

    def __init__(self, message: str, fix: str | None = None) -> None:
        self.message = message
        self.fix = fix
        super().__init__(self.__str__())

    def __str__(self) -> str:
        return f"{self.message} {self.fix}" if self.fix else self.message


class ConfigError(UserError):
    """One or more problems in a JSON config, each with its JSON path."""

    def __init__(self, source: str, problems: Iterable[str]) -> None:
        self.source = source
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        count = len(self.problems)
        noun = "problem" if count == 1 else "problems"
        super().__init__(f"{source}: {count} {noun} in the config:\n{lines}")


class CheckpointError(UserError):
    """A checkpoint that cannot be read or does not match its model config."""


class DatasetError(UserError):
    """A dataset that cannot be used as configured."""
