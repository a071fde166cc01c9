"""``python -m preencode.generate [--debug] ...`` (what ``preencode generate`` will run)."""

import sys

from ..cli import run_guarded, setup_logging
from .cli import generate_main

if __name__ == "__main__":
    argv = sys.argv[1:]
    debug = "--debug" in argv
    setup_logging(debug)
    sys.exit(run_guarded(generate_main, [a for a in argv if a != "--debug"], debug))
