"""Ids of a re-run: this run's sorted inputs matched against the output's manifest (``--update``, ``--prune``).

:func:`assign_ids` is a pure function of the old manifest and the new sorted input list, so every rank (and a
re-run after a kill) computes the same ids, whatever the ranks, workers or batch size:

* an input whose path is in the manifest keeps its id; when its fingerprint changed it is encoded again under
  that id (its old copy is replaced, see :mod:`preencode.store.supersede`);
* a new input gets the next id after the largest id the manifest ever held (pruned ones included), in the
  sorted order of the new inputs;
* an input of the manifest that is gone is kept and marked ``vanished`` (its latent is still valid data), or,
  with ``--prune``, marked ``pruned`` and its files removed; a pruned id is never given again.

A first run (no manifest) gives the positions in the sorted input list, as before. Applying the result to the
same inputs again changes nothing, which is what makes an interrupted update resume exactly: the manifest is
written before anything is encoded.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Any

from ...errors import UsageError, UserError
from ...store.manifest import ManifestEntry
from ...store.names import format_id

log = logging.getLogger(__name__)


@dataclass
class Assignment:
    """The result of :func:`assign_ids`.

    Attributes:
        entries: the new manifest, by id.
        ids: the id of each input, in input order.
        added, changed: ids of the new inputs and of those whose fingerprint changed.
        vanished: entries of inputs gone in this run (kept); pruned: entries pruned by this run.
    """

    entries: list[ManifestEntry] = field(default_factory=list)
    ids: list[int] = field(default_factory=list)
    added: list[int] = field(default_factory=list)
    changed: list[int] = field(default_factory=list)
    vanished: list[ManifestEntry] = field(default_factory=list)
    pruned: list[ManifestEntry] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {"added": len(self.added), "changed": len(self.changed), "vanished": len(self.vanished),
                "pruned": len(self.pruned)}


def assign_ids(old: list[ManifestEntry] | None, inputs: list[tuple[str, dict[str, Any]]], run: int = 1,
               prune: bool = False) -> Assignment:
    """The ids of ``inputs`` (``(path, fingerprint)`` in sorted input order) against the ``old`` manifest
    (None: a new output). ``run``: this run's number, recorded in new and changed entries."""
    result = Assignment()
    old = old or []
    live = {e.path: e for e in old if e.pruned is None}
    next_id = max((e.id for e in old), default=-1) + 1
    seen: set[str] = set()
    by_id: dict[int, ManifestEntry] = {e.id: e for e in old if e.pruned is not None}
    for path, fingerprint in inputs:
        seen.add(path)
        known = live.get(path)
        if known is None:
            entry = ManifestEntry(next_id, path, fingerprint, run)
            next_id += 1
            result.added.append(entry.id)
        elif known.fingerprint != fingerprint:
            entry = ManifestEntry(known.id, path, fingerprint, run)
            result.changed.append(entry.id)
        else:
            entry = replace(known, vanished=None)  # back unchanged: its latent is current again
        by_id[entry.id] = entry
        result.ids.append(entry.id)
    for entry in old:
        if entry.pruned is not None or entry.path in seen:
            continue
        if prune:
            gone = replace(entry, vanished=None, pruned=run)
            result.pruned.append(gone)
        else:
            gone = entry if entry.vanished is not None else replace(entry, vanished=run)
            if entry.vanished is None:
                result.vanished.append(gone)
        by_id[gone.id] = gone
    result.entries = [by_id[i] for i in sorted(by_id)]
    return result


def unchanged(old: list[ManifestEntry] | None, new: list[ManifestEntry]) -> bool:
    """Whether the manifest says the same (``run`` numbers apart)."""
    if old is None:
        return True
    return len(old) == len(new) and all(a.same_input(b) for a, b in zip(old, new, strict=True))


def check_update_flags(update: bool, prune: bool, overwrite: bool) -> None:
    """Raises UsageError for ``--prune`` without ``--update`` or ``--update`` with ``--overwrite``."""
    if prune and not update:
        raise UsageError("--prune only applies with --update.", "Add --update, or drop --prune.")
    if update and overwrite:
        raise UsageError("--update and --overwrite contradict each other (--overwrite starts the output over).",
                         "Pass one of them.")


def refuse_changed(output: Any, old: list[ManifestEntry], result: Assignment) -> UserError:
    """The error of a re-run without ``--update`` whose inputs differ from the output's manifest."""
    present = sum(1 for e in old if e.present)
    vanished = {e.id for e in old if e.vanished is not None}
    came_back = sum(1 for e in result.entries if e.id in vanished and e.present)
    parts = [f"{len(result.added)} new", f"{len(result.changed)} changed", f"{len(result.vanished)} gone"]
    if came_back > 0:
        parts.append(f"{came_back} back")
    return UserError(f"The inputs changed since {output} was encoded ({present} inputs then, {len(result.ids)} now: "
                     f"{', '.join(parts)}).",
                     "Pass --update to encode only the new and changed inputs under stable ids (and --prune to "
                     "remove the latents of gone inputs), or choose another --output-path.")


def describe(result: Assignment) -> str:
    """One line for the log: what the update found."""
    gone = ", ".join(f"{format_id(e.id)} ({e.path})" for e in result.vanished[:5])
    more = f" and {len(result.vanished) - 5} more" if len(result.vanished) > 5 else ""
    text = (f"Update: {len(result.added)} new input(s), {len(result.changed)} changed, "
            f"{len(result.vanished)} gone and kept, {len(result.pruned)} gone and pruned.")
    if gone:
        text += f" Kept (input gone; --prune removes them): {gone}{more}."
    return text


def assign(job: Any, plan: Any) -> Assignment:
    """Give ``plan``'s items their ids (in place) from the output's manifest, on every rank alike.

    Raises:
        UserError: the inputs differ from the manifest's and ``--update`` was not given; the manifest is damaged.
    """
    from ...store.manifest import read_entries
    from .launch import launched_as_rank_zero

    opts = job.options
    old = read_entries(job.output) if job.resuming and not opts.overwrite else None
    inputs = [(item.path, item.input_fingerprint()) for item in plan.items]
    result = assign_ids(old, inputs, job.run or 1, opts.prune)
    if old is not None and not opts.update and not unchanged(old, result.entries):
        raise refuse_changed(job.output, old, result)
    plan.items = [replace(item, index=id_) for item, id_ in zip(plan.items, result.ids, strict=True)]
    if old is not None and opts.update and launched_as_rank_zero():
        (log.warning if result.vanished else log.info)("%s", describe(result))
    return result
