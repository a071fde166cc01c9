"""The ``preencode`` command: thin dispatch to library entry points.

Every user mistake surfaces as a :class:`~preencode.errors.UserError`: one line with the fix on
stderr and exit code 2 (no traceback unless ``--debug``).
"""

from __future__ import annotations

import importlib
import logging
import sys
import warnings
from collections.abc import Callable, Sequence

from .errors import UserError

# subcommand -> (module, function taking argv and returning an exit code, one-line help)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "encode": ("preencode.encode.engine.main", "encode_main", "pre-encode a dataset to latents (pre_encode.py)"),
    "inspect": ("preencode.tools.inspect", "inspect_main", "statistics of an output folder"),
    "verify": ("preencode.tools.verify", "verify_main", "check an output folder for problems"),
    "decode": ("preencode.tools.to_audio", "decode_main", "decode a stored latent back to audio"),
    "train": ("preencode.train.cli", "train_main", "train a latent diffusion model (train.py)"),
    "unwrap": ("preencode.train.cli", "unwrap_main", "export a trained model's plain state dict"),
}


def _usage() -> str:
    lines = ["usage: preencode [--debug] <command> [options]", "", "commands:"]
    lines += [f"  {name:<8} {help_}" for name, (_, _, help_) in COMMANDS.items()]
    lines += ["", "Run 'preencode <command> --help' for the options of a command."]
    return "\n".join(lines)


def setup_logging(debug: bool = False) -> None:
    logging.basicConfig(level=logging.DEBUG if debug else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s" if debug else "%(message)s",
                        stream=sys.stderr)
    if not debug:
        # Lightning's banner lines (GPU available, tips) and warnings about our own sampler are noise here.
        for name in ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning"):
            logging.getLogger(name).setLevel(logging.WARNING)
        warnings.filterwarnings("ignore", message=".*custom batch sampler.*")
        warnings.filterwarnings("ignore", message=".*LeafSpec.*")
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")


def run_guarded(entry: Callable[[list[str]], int], argv: list[str], debug: bool) -> int:
    """Run an entry point, turning user errors into one line on stderr and exit code 2."""
    try:
        return entry(argv)
    except UserError as err:
        if debug:
            raise
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("interrupted; re-run the same command to resume", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stderr.close()
        return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        from .schema import did_you_mean

        print(f"error: unknown command {name!r}{did_you_mean(name, COMMANDS)}.\n\n{_usage()}", file=sys.stderr)
        return 2
    setup_logging(debug)
    module, func, _ = COMMANDS[name]
    entry = getattr(importlib.import_module(module), func)
    return run_guarded(entry, rest, debug)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
