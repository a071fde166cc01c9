"""The ``preencode`` command line: one parser with a subcommand per task, and one error shell.

    preencode [--debug] <command> [options]      (--debug is also accepted after the command)
    pre_encode.py [options]                      = preencode encode [options]
    train.py [options]                           = preencode train [options]

Each subcommand is one :class:`Command` in :data:`COMMANDS`: a line of help, the function that adds
its flags to its parser (defined next to the options it fills) and the function that runs it (a few
lines over library calls, returning the exit code). Both are named ``"module:function"`` and imported
when needed; the flag modules import neither torch nor Lightning, so ``--help`` answers at once.

Errors are reported in one place (:func:`guarded`): a :class:`~preencode.errors.ReportedError` (a
usage error found by the parser included) prints ``<prog>: error: <message> <fix>`` on stderr, as
argparse does, and the command exits with the error's ``exit_code``; ``--debug`` prints the
traceback before that line. Ctrl-C and a closed output pipe are handled here too.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import os
import sys
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from . import __version__, clock
from .console import process_rank, setup_logging
from .errors import EXIT_INTERRUPTED, EXIT_OK, Interrupted, ReportedError, UsageError
from .schema import did_you_mean

PROG = "preencode"


@dataclass(frozen=True)
class Command:
    """A subcommand.

    Args:
        help: one line for ``preencode --help``.
        add_arguments: ``"module:function"``; the function adds the flags to the subcommand's parser
            (and may set its description); its module must not import torch.
        run: ``"module:function"``; the function takes the parsed ``argparse.Namespace`` and returns
            the exit code.
    """

    help: str
    add_arguments: str
    run: str


COMMANDS: dict[str, Command] = {
    "encode": Command("pre-encode a dataset to latents (pre_encode.py)",
                      "preencode.encode.engine.options:add_arguments", "preencode.encode.engine.main:run_encode"),
    "inspect": Command("statistics of an output folder",
                       "preencode.tools.commands:add_inspect_arguments", "preencode.tools.commands:run_inspect"),
    "verify": Command("check an output folder for problems",
                      "preencode.tools.commands:add_verify_arguments", "preencode.tools.commands:run_verify"),
    "decode": Command("decode a stored latent back to audio",
                      "preencode.tools.commands:add_decode_arguments", "preencode.tools.commands:run_decode"),
    "train": Command("train a latent diffusion model (train.py)",
                     "preencode.train.options:add_train_arguments", "preencode.train.options:run_train"),
    "unwrap": Command("export a trained model's plain state dict",
                      "preencode.train.options:add_unwrap_arguments", "preencode.train.options:run_unwrap"),
    "generate": Command("generate audio from a prompt with a diffusion model",
                        "preencode.generate.options:add_generate_arguments", "preencode.generate.options:run_generate"),
}

_DEBUG_HELP = "show the traceback of an error"
_VERSION = f"{PROG} {__version__}"


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Every command's help: descriptions as written, and each option's help ending with its default.

    A flag shows "(default: off)" whatever it stores (``--no-skip-padding`` stores False in
    ``skip_padding``, whose default True says nothing about the flag); an option without a default shows
    "(default: none)", a required one "(required)"; help that already names its default is left as is.
    """

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (not action.option_strings or "default" in text
                or isinstance(action, (argparse._HelpAction, argparse._VersionAction))):
            return text
        if action.required:
            return f"{text} (required)"
        if action.nargs == 0:
            return f"{text} (default: off)"
        if action.default is None:
            return f"{text} (default: none)"
        return f"{text} (default: %(default)s)"


def _load(ref: str) -> Callable[..., Any]:
    module, _, name = ref.partition(":")
    function: Callable[..., Any] = getattr(importlib.import_module(module), name)
    return function


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose errors are raised as :class:`UsageError`, and whose choices suggest a close match."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.subcommands: dict[str, argparse.ArgumentParser] = {}  # filled by build_parser

    def parse_args(self, args: Sequence[str] | None = None, namespace: Any = None) -> Any:  # type: ignore[override]
        parsed, extra = self.parse_known_args(args, namespace)
        if extra:  # argparse reports them as the top-level command's; they belong to the subcommand
            owner = self.subcommands.get(getattr(parsed, "command", None) or "", self)
            owner.error(f"unrecognized arguments: {' '.join(extra)}")
        return parsed

    def error(self, message: str) -> NoReturn:
        raise UsageError(message, prog=self.prog, usage=self.format_usage())

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        if action.choices is not None and value not in action.choices:
            names = [str(choice) for choice in action.choices]
            raise argparse.ArgumentError(action, f"invalid choice: {value!r} (choose from {', '.join(names)})"
                                                 f"{did_you_mean(str(value), names)}")


def build_parser(prog: str = PROG, progs: Mapping[str, str] | None = None) -> ArgumentParser:
    """The one parser: every subcommand of :data:`COMMANDS` with its flags.

    Args:
        prog: the command's name.
        progs: a subcommand's own name where it runs as a script (``{"encode": "pre_encode.py"}``).
    """
    parser = ArgumentParser(prog=prog, description="Pre-encode audio datasets to autoencoder latents and train "
                                                   "latent diffusion models on them.",
                            epilog=f"Run '{prog} <command> --help' for the options of a command.",
                            formatter_class=HelpFormatter)
    parser.add_argument("--debug", action="store_true", help=_DEBUG_HELP)
    parser.add_argument("--version", action="version", version=_VERSION, help="print the version and exit")
    commands = parser.add_subparsers(dest="command", metavar="<command>", title="commands", required=True)
    for name, command in COMMANDS.items():
        sub = commands.add_parser(name, help=command.help, prog=(progs or {}).get(name, f"{prog} {name}"))
        parser.subcommands[name] = sub
        _load(command.add_arguments)(sub)
        sub.formatter_class = HelpFormatter  # one help format for every command, whatever add_arguments set
        # SUPPRESS: an absent --debug after the command keeps the value given before it.
        sub.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=_DEBUG_HELP)
        sub.add_argument("--version", action="version", version=_VERSION, help="print the version and exit")
        sub.set_defaults(command_prog=sub.prog)
    return parser


def main(argv: Sequence[str] | None = None, *, command: str | None = None, prog: str | None = None) -> int:
    """Run the command line; returns the exit code.

    Args:
        argv: the arguments (default ``sys.argv[1:]``).
        command: run this subcommand with ``argv`` as its flags (the ``pre_encode.py`` and ``train.py``
            scripts).
        prog: the name that ``command`` shows in its usage and error lines (e.g. ``pre_encode.py``).

    Times the command reports count from the process's start when it runs as the command line (``argv``
    not given), else from this call (see :mod:`preencode.clock`).
    """
    as_process = argv is None  # the command line itself, not a call from Python (tests, the demo)
    clock.start_command(clock.process_start() if as_process else None)
    if as_process:
        # Importing torch and Lightning allocates ~10^6 objects; the default threshold (700) ran the cyclic
        # collector over the growing heap hundreds of times: ~20 % of start-up's CPU time on this project's
        # CPU. The same applies at exit, where collecting every module's objects took ~1.5 s: freezing them
        # (they die with the process) skips that. Garbage cycles are still collected, less often.
        gc.set_threshold(100_000, 50, 100)
    try:
        return _main(argv, command, prog)
    finally:
        clock.end_command()
        if as_process:
            gc.freeze()


def _main(argv: Sequence[str] | None, command: str | None, prog: str | None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    progs: dict[str, str] = {}
    if command is not None:
        words.insert(0, command)
        if prog:
            progs[command] = prog
    parser = build_parser(progs=progs)
    try:
        args = parser.parse_args(words)
    except SystemExit as done:  # --help was printed
        return done.code if isinstance(done.code, int) else EXIT_OK
    except UsageError as err:
        return report(err, err.prog)
    except BrokenPipeError:
        return _output_closed()
    setup_logging(args.debug)
    run = _load(COMMANDS[args.command].run)
    return guarded(lambda: run(args), args.command_prog, debug=args.debug)


def guarded(body: Callable[[], int], prog: str, debug: bool = False) -> int:
    """Run ``body`` and return its exit code, reporting what it raises in the command line's one format."""
    try:
        return body()
    except Interrupted as err:  # not an error: what was finished is kept
        if process_rank() == 0:  # under DDP every rank stops; one says so
            print(f"{prog}: {err}", file=sys.stderr)
        return err.exit_code
    except ReportedError as err:
        return report(err, prog, debug)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; re-run the same command to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # output piped into `head` and the like
        return _output_closed()


def report(err: ReportedError, prog: str, debug: bool = False) -> int:
    """Print ``<prog>: error: <message> <fix>`` (after the traceback with ``debug``); returns the exit code."""
    if debug:
        traceback.print_exc()
    if isinstance(err, UsageError) and err.usage:
        sys.stderr.write(err.usage)
    print(f"{prog}: error: {err}", file=sys.stderr)
    return err.exit_code


def _output_closed() -> int:
    # Point stdout at /dev/null so that flushing it at exit does not raise again.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
