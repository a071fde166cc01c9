"""Whose folder is this? Deciding, before anything is written, whether an output folder may be used.

A folder is preencode's when it holds a ``details.json`` with a ``format_version`` (written first by
every run, atomically). A folder that holds only what a run writes before that (the lock file, a
temporary of a root file) is as good as empty. Anything else that is not empty is refused, with or
without ``--overwrite``: preencode deletes only what it can tell it wrote.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from ..errors import UserError
from .details import read_details
from .names import DETAILS, LOCK, is_own_rank_file, is_own_root_file, is_own_temporary, is_rank_dir

_EXAMPLES = 3
_CHOOSE = "Choose an empty or new --output-path."


class Ownership(Enum):
    NEW = "new"  # missing, empty, or only what a run writes before details.json
    OURS = "ours"  # details.json of ours


@dataclass
class _Survey:
    foreign: list[str] = field(default_factory=list)  # entries preencode does not write (a few)
    ours: int = 0  # entries named as preencode names them, besides the lock and temporaries


def _survey(output: Path) -> _Survey:
    survey = _Survey()
    for entry in sorted(os.scandir(output), key=lambda e: e.name):
        if entry.is_dir(follow_symlinks=False) and is_rank_dir(entry.name):
            for inner in sorted(os.scandir(entry.path), key=lambda e: e.name):
                if inner.is_file(follow_symlinks=False) and is_own_rank_file(inner.name):
                    survey.ours += 1
                else:
                    survey.foreign.append(f"{entry.name}/{inner.name}")
        elif entry.is_file(follow_symlinks=False) and is_own_root_file(entry.name):
            survey.ours += not _is_start_only(entry.name)
        else:
            survey.foreign.append(entry.name)
        if len(survey.foreign) >= _EXAMPLES:
            break
    return survey


def _is_start_only(name: str) -> bool:
    """The files a run writes before details.json: the lock, and the temporary of a root file."""
    return name == LOCK or is_own_temporary(name)


def check_ownership(output: Path) -> Ownership:
    """Whether ``output`` is new (missing, empty) or preencode's own; refuses anything else.

    Raises:
        UserError: ``output`` holds files preencode did not write (naming a few), output of
            stable-audio-tools, an unreadable details file, or preencode's files without their
            details file (the settings they were made with are unknown).
    """
    if not output.is_dir():
        return Ownership.NEW
    details = read_details(output)  # raises for a format version this version does not read
    if details.exists:
        if details.problems:
            raise UserError(f"{details.problems[0]}; preencode cannot tell whether it wrote {output}.",
                            f"Restore {DETAILS}, or choose an empty or new --output-path.")
        if details.is_reference:
            raise UserError(f"{output} holds output of another tool (its {DETAILS} has no format_version); "
                            "preencode did not write it and will not change it.", _CHOOSE)
        return Ownership.OURS
    survey = _survey(output)
    if survey.foreign:
        shown = ", ".join(survey.foreign[:_EXAMPLES])
        raise UserError(f"{output} holds files that preencode did not write (e.g. {shown}); choose an empty or "
                        "new folder.", "preencode never deletes files it did not write, with --overwrite neither.")
    if survey.ours:
        raise UserError(f"{output} holds preencode output but no {DETAILS}: the settings it was encoded with are "
                        "unknown, so it can be neither resumed nor overwritten safely.",
                        f"Restore {output / DETAILS} (e.g. from a backup), or delete {output} yourself, "
                        "or choose an empty or new --output-path.")
    return Ownership.NEW
