"""What a command prints on the terminal: one log handler for the tool and the libraries it runs.

Our messages, Lightning's, transformers' and Python warnings (torch's included) all go through one
handler on the root logger, as plain lines on stderr:

* **each message once**: ``lightning/__init__.py`` attaches a console handler of its own to the
  ``lightning`` logger whenever it is imported (transformers does the same for ``transformers``), so
  every Lightning message was printed twice, once by it with an ``INFO:`` prefix and once by the
  root handler it propagates to. Those library loggers are adopted here (:func:`_adopt`): console
  handlers attached to them are dropped and their messages propagate to ours. A warning raised at two
  places with the same text (PyTorch's DataLoader worker warning) is shown once per command.
* **known-irrelevant messages filtered by their text** (:data:`QUIET`), never by muting a logger: a
  new message of the same library still shows. ``--debug`` shows everything, with logger names.
* **one process speaks**: under DDP every rank runs the command; ranks other than 0 show only warnings
  and errors, prefixed with their rank, so that rank 0's lines are not repeated by each rank.

torch's own loggers (``torch._dynamo``, ...) keep torch's handlers, so ``TORCH_LOGS`` works as torch
documents; each of their messages is printed once, in torch's format.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import warnings
from typing import TextIO

#: Library loggers whose own console handlers are dropped so that their messages reach ours.
ADOPTED_LOGGERS = ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning", "lightning_fabric",
                   "transformers")

#: Messages that say nothing useful to a user of this tool, matched against the message text (a Python
#: warning's text starts with its category, e.g. ``UserWarning: ...``). Each with why it is noise.
QUIET: tuple[tuple[str, str], ...] = (
    # Lightning's banner and tips (printed by every Trainer).
    (r"^(GPU|TPU|HPU|IPU) available: ", "Lightning's device banner; the devices used are in our own lines"),
    (r"^LOCAL_RANK: \d+ - CUDA_VISIBLE_DEVICES", "Lightning's per-rank device banner"),
    (r"Tip: For seamless cloud", "Lightning's advertisement for litlogger"),
    (r"^(💡 )?Tip: ", "Lightning's tips"),
    # Warnings about choices we made on purpose.
    (r"does not have many workers", "Lightning's advice to add workers: --num-workers is the user's choice"),
    (r"will create \d+ worker processes in total\. Our suggested max number of worker",
     "PyTorch's worker-count warning: --num-workers is checked against the cores by the encode command"),
    (r"Total length of `DataLoader` across ranks is zero",
     "a rank with nothing left to encode (the encode command says when nothing is left at all)"),
    (r"custom batch sampler", "our length-grouped batches are a batch sampler on purpose; ids never depend on it"),
    (r"Couldn't infer the batch indices", "--full-length batches are built by the dataset; the writer needs no "
                                          "indices"),
    (r"LeafSpec", "a deprecation inside Lightning's use of torch's pytree, not ours to fix"),
    # Training (preencode train): choices of ours Lightning warns about, and what our progress says instead.
    (r"You defined a `validation_step` but have no `val_dataloader`",
     "validation runs only with --val-dataset-config; without it the module's validation_step is unused"),
    (r"module\(s\) in eval mode at the start of training",
     "the frozen pretransform and conditioners (T5) are in eval mode on purpose"),
    (r"^`Trainer\.fit` stopped: `max_steps=\d+` reached",
     "our progress shows the last step and the command says where the checkpoint is"),
    # Lightning's distributed banner: our progress line names the ranks.
    (r"^Initializing distributed: GLOBAL_RANK", "Lightning's per-rank start-up line"),
    (r"All distributed processes registered", "Lightning's distributed banner"),
)
#: Environment variables that give a process's rank, in the order Lightning reads them.
RANK_VARIABLES = ("RANK", "LOCAL_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK")

_FORMAT = "%(message)s"
_DEBUG_FORMAT = "%(levelname)s %(name)s: %(message)s"


class _Quiet(logging.Filter):
    """Drops records whose text matches :data:`QUIET`."""

    def __init__(self) -> None:
        super().__init__()
        self.pattern = re.compile("|".join(f"(?:{p})" for p, _ in QUIET))

    def filter(self, record: logging.LogRecord) -> bool:
        return not self.pattern.search(record.getMessage())


class _Once(logging.Filter):
    """Drops a warning (level WARNING and up) whose text was already shown in this command."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        text = record.getMessage()
        if text in self.seen:
            return False
        self.seen.add(text)
        return True


def process_rank() -> int:
    """This process's rank as the launcher (Lightning, torchrun, SLURM) set it in the environment; 0 if none."""
    for name in RANK_VARIABLES:
        value = os.environ.get(name, "")
        if value.isdigit():
            return int(value)
    return 0


class ConsoleHandler(logging.StreamHandler):
    """The command line's one handler: plain lines on stderr (``sys.stderr`` at the time of writing, so
    that a redirected or captured stderr is followed)."""

    def __init__(self, debug: bool) -> None:
        super().__init__()
        rank = process_rank()
        prefix = f"rank {rank}: " if rank else ""
        self.setFormatter(logging.Formatter(prefix + (_DEBUG_FORMAT if debug else _FORMAT)))
        self.setLevel(logging.DEBUG if debug else logging.INFO if rank == 0 else logging.WARNING)
        self.addFilter(_Once())
        if not debug:
            self.addFilter(_Quiet())

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:  # StreamHandler.__init__ assigns it
        pass


class _AdoptedLogger(logging.Logger):
    """A library's package logger whose messages go to the root logger's handlers only: the console
    handlers the library attaches are dropped, and it always propagates."""

    def addHandler(self, hdlr: logging.Handler) -> None:
        if type(hdlr) is not logging.StreamHandler:  # a file handler or the like is the user's business
            super().addHandler(hdlr)

    @property
    def propagate(self) -> bool:
        return True

    @propagate.setter
    def propagate(self, value: bool) -> None:
        pass


def _adopt(name: str) -> None:
    existing = logging.Logger.manager.loggerDict.get(name)
    if isinstance(existing, logging.Logger):  # the library was imported before this setup
        for handler in [h for h in existing.handlers if type(h) is logging.StreamHandler]:
            existing.removeHandler(handler)
        existing.propagate = True
        return
    previous = logging.getLoggerClass()
    logging.setLoggerClass(_AdoptedLogger)
    try:
        logging.getLogger(name)
    finally:
        logging.setLoggerClass(previous)


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: TextIO | None = None, line: str | None = None) -> None:
    """``warnings.showwarning`` of the command line: one log record on ``py.warnings``."""
    if file is not None:  # written to an explicit file: not ours to reroute
        _ORIGINAL_SHOWWARNING(message, category, filename, lineno, file, line)
        return
    logger = logging.getLogger("py.warnings")
    if logger.isEnabledFor(logging.DEBUG):
        logger.warning("%s", warnings.formatwarning(message, category, filename, lineno, line).rstrip())
    else:
        logger.warning("%s: %s", category.__name__, message)


_ORIGINAL_SHOWWARNING = warnings.showwarning


def setup_logging(debug: bool = False, *, force: bool = False) -> ConsoleHandler | None:
    """Install the one console handler (replacing the one of an earlier call) and route the libraries'
    messages and Python warnings through it; returns the handler.

    Like :func:`logging.basicConfig`, nothing is installed where the host process already set up logging
    (the root logger has handlers of its own, e.g. pytest's): its handlers keep receiving every message.

    Args:
        debug: every level, logger names and warning locations, nothing filtered.
        force: install even where the root logger has other handlers.
    """
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, ConsoleHandler)]:
        root.removeHandler(old)
    for name in ADOPTED_LOGGERS:
        _adopt(name)
    if root.handlers and not force:
        return None
    handler = ConsoleHandler(debug)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    logging.getLogger("py.warnings").setLevel(logging.DEBUG if debug else logging.INFO)
    warnings.showwarning = _show_warning
    return handler
