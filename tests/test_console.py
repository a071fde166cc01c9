"""The command line's one log handler: each message once, Lightning's and the libraries' included, and the
known-irrelevant ones filtered by their text."""

from __future__ import annotations

import logging
import subprocess
import sys
import warnings

from preencode.console import QUIET, ConsoleHandler, setup_logging
from tests.test_cli import ENV, ROOT


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=ENV,
                          check=True, timeout=120)


def test_lightning_messages_appear_once_without_its_own_prefix_when_imported_after_setup():
    """Lightning attaches a console handler of its own to the ``lightning`` logger on import ("INFO: ...")."""
    proc = _run(
        "from preencode.console import setup_logging\n"
        "setup_logging()\n"
        "from lightning.pytorch.utilities.rank_zero import rank_zero_info, rank_zero_warn\n"
        "rank_zero_info('an info line of Lightning')\n"
        "rank_zero_warn('a warning of Lightning')\n"
        "rank_zero_info('GPU available: False, used: False')\n"
        "import logging; logging.getLogger('preencode').info('our own line')\n")
    lines = proc.stderr.splitlines()
    assert lines.count("an info line of Lightning") == 1
    assert sum("a warning of Lightning" in line for line in lines) == 1
    assert "our own line" in lines
    assert not any(line.startswith("INFO:") or "GPU available" in line for line in lines), lines


def test_lightning_imported_before_setup_is_adopted_too():
    proc = _run(
        "import lightning.pytorch\n"
        "from preencode.console import setup_logging\n"
        "setup_logging()\n"
        "from lightning.pytorch.utilities.rank_zero import rank_zero_info\n"
        "rank_zero_info('an info line of Lightning')\n")
    assert proc.stderr.splitlines() == ["an info line of Lightning"]


def test_transformers_messages_go_through_our_handler():
    proc = _run(
        "from preencode.console import setup_logging\n"
        "setup_logging()\n"
        "from transformers.utils import logging as hf\n"
        "hf.get_logger('transformers.x').warning('a transformers warning')\n")
    assert proc.stderr.splitlines() == ["a transformers warning"]  # not "[transformers] ..." by its own handler


def test_a_warning_raised_at_two_places_is_shown_once_and_quiet_ones_not_at_all(capfd):
    saved = warnings.showwarning
    setup_logging(force=True)
    try:
        for _ in range(2):
            warnings.warn_explicit("the same text", UserWarning, "a.py", 1)
            warnings.warn_explicit("the same text", UserWarning, "b.py", 2)
        warnings.warn_explicit("This DataLoader will create 4 worker processes in total. Our suggested max number "
                               "of worker in current system is 2", UserWarning, "c.py", 3)
        logging.getLogger("lightning.pytorch.utilities.rank_zero").info(
            "💡 Tip: For seamless cloud logging and experiment tracking, try installing [litlogger]")
        logging.getLogger("lightning.pytorch.utilities.data").warning(
            "Total length of `DataLoader` across ranks is zero. Please make sure this was your intention.")
    finally:
        _remove_handler()
        warnings.showwarning = saved
    err = capfd.readouterr().err.splitlines()
    assert err == ["UserWarning: the same text"]


def test_debug_shows_everything_with_logger_names(capfd):
    saved = warnings.showwarning
    setup_logging(debug=True, force=True)
    try:
        logging.getLogger("lightning.pytorch.utilities.rank_zero").info("GPU available: False, used: False")
    finally:
        _remove_handler()
        warnings.showwarning = saved
    assert capfd.readouterr().err.splitlines() == [
        "INFO lightning.pytorch.utilities.rank_zero: GPU available: False, used: False"]


def test_every_filter_says_why():
    assert all(pattern and len(why) > 10 for pattern, why in QUIET)


def _remove_handler() -> None:
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, ConsoleHandler)]:
        root.removeHandler(handler)


def test_a_host_that_set_up_logging_keeps_it(caplog):
    assert setup_logging() is None  # pytest's handlers are on the root logger: like logging.basicConfig
    assert not any(isinstance(h, ConsoleHandler) for h in logging.getLogger().handlers)


def test_ranks_other_than_0_show_only_their_warnings_with_their_rank():
    code = ("from preencode.console import setup_logging\n"
            "setup_logging()\n"
            "import logging; log = logging.getLogger('preencode')\n"
            "log.info('Dataset: 5 inputs'); log.warning('a problem')\n")
    env = {**ENV, "LOCAL_RANK": "1"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env,
                          check=True, timeout=120)
    assert proc.stderr.splitlines() == ["rank 1: a problem"]
