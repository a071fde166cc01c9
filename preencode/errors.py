"""Errors reported to users, and the command line's exit codes.

Every problem a user can act on raises a subclass of :class:`ReportedError`. The command line
(:mod:`preencode.cli`) prints it as ``<prog>: error: <message> <fix>`` and exits with its
``exit_code``; no traceback is shown unless ``--debug`` is given. A new kind of problem with its own
exit code is one subclass that sets ``exit_code``.
"""

from __future__ import annotations

from collections.abc import Iterable

EXIT_OK = 0
EXIT_ENVIRONMENT = 1  # disk full, permissions, unreachable storage
EXIT_USAGE = 2  # flags, configs, checkpoints: what the user passed
EXIT_PARTIAL = 3  # the run finished but some inputs failed
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT)
EXIT_TERMINATED = 143  # SIGTERM (128 + SIGTERM), e.g. a job scheduler stopping the run


class ReportedError(Exception):
    """An error shown as one message plus its fix, without a traceback, exiting with ``exit_code``.

    Args:
        message: what is wrong, naming the path or value involved.
        fix: how to fix it (optional, printed after the message).
    """

    exit_code: int = EXIT_USAGE

    def __init__(self, message: str, fix: str | None = None) -> None:
        self.message = message
        self.fix = fix
        super().__init__(self.__str__())

    def __str__(self) -> str:
        return f"{self.message} {self.fix}" if self.fix else self.message


class UserError(ReportedError):
    """An error caused by user input (a flag, config, checkpoint or input file): exit code 2."""

    exit_code = EXIT_USAGE


class UsageError(UserError):
    """A command-line usage error found by the argument parser.

    Args:
        message: argparse's message, e.g. ``argument --batch-size: expected an integer >= 1, got 0``.
        prog: the (sub)command whose flags are wrong, e.g. ``preencode encode``.
        usage: its usage text, printed before the message as argparse does.
    """

    def __init__(self, message: str, prog: str, usage: str = "") -> None:
        self.prog = prog
        self.usage = usage
        super().__init__(message)


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


class ResourceError(ReportedError):
    """A problem of the machine or its storage, not of what the user passed: a full disk, permission
    denied, unreachable or misconfigured storage, an output folder in use by another run. Exit code 1:
    the same command works once the environment is fixed."""

    exit_code = EXIT_ENVIRONMENT


class Interrupted(ReportedError):
    """The run was stopped by SIGINT (exit 130) or SIGTERM (exit 143) after keeping what it finished.

    Args:
        message: what was kept, e.g. ``interrupted: 12 of 40 encoded``.
        exit_code: 128 + the signal number.
        fix: how to go on (re-run the same command).
    """

    def __init__(self, message: str, exit_code: int = EXIT_INTERRUPTED,
                 fix: str | None = "re-run the same command to resume") -> None:
        super().__init__(message, fix)
        self.exit_code = exit_code

    def __str__(self) -> str:
        return f"{self.message}; {self.fix}" if self.fix else self.message


class StorageError(ResourceError):
    """Object storage that cannot be reached or used (network, credentials, permissions) after the retries:
    exit code 1."""


class TrainingDiverged(UserError):
    """Training met a non-finite loss, or weights that are no longer finite, and stopped without saving them:
    exit code 2 (the learning rate, the gradient clipping, the data or the starting weights need a change)."""
