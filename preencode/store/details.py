"""The details file of an output tree: what made it, read once, its format version checked.

Ours holds ``format_version``, the model and dataset config CONTENTS, ``sample_size``, the checkpoint's
SHA-256, a ``latent`` section and the last run's arguments; a re-run must match it to resume
(:func:`check_compatible`). ``runs`` lists every run of the output, oldest first (run ``n`` is ``runs[n - 1]``,
the number the manifest's entries name): ``started`` (UTC, ISO 8601), ``args``, and once it ends ``finished``
and ``counts`` (encoded, skipped, failed, rejected; with ``--update`` also added, changed, vanished, pruned).
Files written before runs were kept have no ``runs``; their first recorded run is run 2 (``runs[0]`` then
stands for the earlier runs, with ``started`` null). The list is an addition readers may ignore: the format
version did not change. stable-audio-tools' holds no ``format_version`` and the config file PATHS; it is
still read (:attr:`Details.is_reference`). A ``format_version`` this version does not read is refused.
"""

from __future__ import annotations

import json
import logging
import shlex
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import UserError
from ..schema import load_json
from .atomic import atomic_write
from .latent_info import (
    LatentInfo,
    latent_from_model_config,
    latent_from_section,
    merge,
)
from .names import DETAILS
from .objects import ObjectPath, StorePath, store_path

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
#: Every format version this version reads (the current one and older ones still supported).
READABLE_FORMAT_VERSIONS = (1,)

# Settings that change what is stored: a resumed run must use the same ones.
_IDENTITY_KEYS = ("model_config", "checkpoint_sha256", "sample_size", "latent", "dataset_config", "mode")


@dataclass
class Details:
    """A parsed details file.

    Attributes:
        path: where it is (or would be).
        exists: whether the file is there.
        data: its JSON object as stored (empty when missing or unreadable).
        latent: the latent description gathered from it (and from the model config it names).
        problems: why it, or the model config it names, could not be used.
        warnings: what limits the checks without making the tree unusable.
    """

    path: StorePath
    exists: bool = False
    data: dict[str, Any] = field(default_factory=dict)
    latent: LatentInfo = field(default_factory=LatentInfo)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def format_version(self) -> int | None:
        version = self.data.get("format_version")
        return version if isinstance(version, int) and not isinstance(version, bool) else None

    @property
    def is_reference(self) -> bool:
        """True for a file written by stable-audio-tools (no format version, config paths)."""
        return self.exists and bool(self.data) and "format_version" not in self.data

    def encode_command(self, output: str | Path) -> str | None:
        """The command that finishes encoding into ``output``, rebuilt from the stored arguments (None when the
        file holds none): the same settings, without ``--overwrite`` (it would start over), ``--limit-batches``
        (it would stop again) and ``--summary-json``. Paths are as they were given to the first run."""
        args = self.data.get("args")
        if not isinstance(args, dict) or not args.get("dataset_config"):
            return None
        words = ["preencode", "encode"]
        for key, value in args.items():
            if key == "skip_padding":  # the flag is --no-skip-padding
                words += [] if value else ["--no-skip-padding"]
                continue
            if key in ("overwrite", "update", "prune", "limit_batches", "summary_json") or value is None \
                    or value is False:
                continue
            flag = "--" + key.replace("_", "-")
            words += [flag] if value is True else [flag, str(output if key == "output_path" else value)]
        return shlex.join(words)

    @property
    def model_config(self) -> dict[str, Any] | None:
        """The stored model config's contents (``None`` for the reference's path, or when absent)."""
        stored = self.data.get("model_config")
        return stored if isinstance(stored, dict) else None


def build_details(*, model_config: dict, dataset_config: dict, sample_size: int, args: dict,
                  checkpoint_sha256: str, latent: dict, mode: dict) -> dict[str, Any]:
    """The content of a details file (configs stored as CONTENTS, not paths)."""
    return {
        "format_version": FORMAT_VERSION,
        "preencode_version": __version__,
        "model_config": model_config,
        "dataset_config": dataset_config,
        "sample_size": sample_size,
        "checkpoint_sha256": checkpoint_sha256,
        "latent": latent,
        "mode": mode,
        "args": args,
    }


RUNS = "runs"


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _runs(data: dict[str, Any]) -> list[Any]:
    """The ``runs`` of details ``data``; a file of before runs were kept gets one entry standing for its runs."""
    stored = data.get(RUNS)
    return list(stored) if isinstance(stored, list) else [{"started": None, "args": data.get("args")}]


def next_run(data: dict[str, Any]) -> int:
    """The number the next run of an existing output gets (its details ``data``)."""
    return len(_runs(data)) + 1


def record_run_start(output: StorePath, run: int, args: dict[str, Any]) -> None:
    """List run ``run`` in ``details.json`` (started now, with its ``args``), unless it is listed already.
    Called once the run starts encoding: a run refused, or with nothing to do, leaves no trace."""
    details = read_details(output)
    runs = _runs(details.data)
    if details.problems or len(runs) != run - 1:
        return
    runs.append({"started": utc_now(), "args": args})
    write_details(output, {**details.data, RUNS: runs})


def record_run_end(output: StorePath, run: int, counts: dict[str, Any]) -> None:
    """Note in ``details.json`` that run ``run`` ended, with its ``counts`` (nothing when the run is not listed)."""
    details = read_details(output)
    runs = details.data.get(RUNS)
    if details.problems or not isinstance(runs, list) or not 1 <= run <= len(runs) or not isinstance(runs[run - 1],
                                                                                                    dict):
        return
    runs[run - 1] = {**runs[run - 1], "finished": utc_now(), "counts": counts}
    write_details(output, details.data)


def write_details(output: StorePath, details: dict[str, Any]) -> None:
    """Write ``<output>/details.json`` atomically (on S3: one PUT)."""
    atomic_write(output / DETAILS, json.dumps(details, indent=2))


def _check_version(path: StorePath, data: dict[str, Any]) -> str | None:
    """A problem with ``format_version``, or None. Raises UserError for a version this version cannot read."""
    if "format_version" not in data:
        return None
    version = data["format_version"]
    if not isinstance(version, int) or isinstance(version, bool):
        return f"{path}: format_version must be an integer, got {version!r}"
    if version > FORMAT_VERSION:
        raise UserError(f"{path} has format_version {version}, newer than this preencode {__version__} reads "
                        f"(format_version {FORMAT_VERSION}).", "Upgrade preencode to read this output.")
    if version not in READABLE_FORMAT_VERSIONS:
        raise UserError(f"{path} has format_version {version}, which this preencode {__version__} no longer reads "
                        f"(it reads {', '.join(map(str, READABLE_FORMAT_VERSIONS))}).",
                        "Read it with an older preencode, or encode the data again.")
    return None


def _model_config_file(reference: str, root: StorePath) -> StorePath | None:
    """The model config a reference details file names: as stored, else relative to the output tree."""
    for candidate in (Path(reference), root / reference):
        if candidate.is_file():
            return candidate
    return None


def _latent_info(details: Details, root: StorePath, model_config: str | Path | None) -> LatentInfo:
    data, where = details.data, details.path.name
    args = data.get("args")
    flag = args.get("is_discrete") if isinstance(args, dict) else None
    flag = flag if isinstance(flag, bool) else None
    latent = LatentInfo()
    if isinstance(data.get("latent"), dict):
        latent = latent_from_section(data["latent"], f"{where} latent section")
    stored = data.get("model_config")
    if isinstance(stored, dict):
        latent = merge(latent, latent_from_model_config(stored, f"{where} model_config", flag))
    elif isinstance(stored, str):
        found = _model_config_file(stored, root)
        if found is None and model_config is None:
            # Typical once a reference output has moved machines: the latents are still checked for
            # consistency with each other.
            details.warnings.append(f"{details.path}: the model config it names ({stored}) is not readable; "
                                    "shapes are checked for consistency only (pass --model-config to check "
                                    "them against the model)")
        elif found is not None:
            try:
                parsed = json.loads(found.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
                details.problems.append(f"{found}: unreadable model config ({err})")
                parsed = None
            latent = merge(latent, latent_from_model_config(parsed, str(found), flag))
    if latent.is_discrete is None and flag is not None:
        latent = merge(latent, LatentInfo(is_discrete=flag, source=f"{where} args"))
    return latent


def read_details(root: str | Path | ObjectPath, model_config: str | Path | None = None) -> Details:
    """Read ``<root>/details.json`` and gather what it says about the latents.

    An unreadable file is reported in ``problems`` (callers decide whether that stops them).

    Args:
        root: the output tree (or a training dataset root), a folder or an ``s3://`` prefix.
        model_config: an autoencoder config file given by the user; its numbers win over the tree's
            (useful for reference output whose stored config path no longer exists).

    Raises:
        UserError: the file has a format version this version does not read (one line naming both
            versions), or ``model_config`` was given but cannot be read.
        StorageError: the tree is on S3 and S3 cannot be reached.
    """
    root = store_path(root)
    details = Details(path=root / DETAILS, exists=(root / DETAILS).is_file())
    if details.exists:
        try:
            data = json.loads(details.path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            details.problems.append(f"{details.path}: unreadable ({err})")
            data = {}
        if not isinstance(data, dict):
            details.problems.append(f"{details.path}: expected a JSON object")
            data = {}
        details.data = data
        problem = _check_version(details.path, data)
        if problem:
            details.problems.append(problem)
    latent = _latent_info(details, root, model_config) if details.data else LatentInfo()
    if model_config is not None:
        given = latent_from_model_config(load_json(model_config, "Model config"), str(model_config))
        latent = merge(given, latent)
    details.latent = latent
    log.debug("latent description: %s", latent)
    return details


# The command-line flag (or config) behind a stored setting, to name it as the user wrote it.
_SETTING_NAMES = {
    "sample_size": "--sample-size", "checkpoint_sha256": "the checkpoint (--ckpt-path, SHA-256)",
    "latent.posterior": "--posterior", "latent.posterior_std_sidecar": "--store-std",
    "latent.dtype": "the latent dtype (--model-half)", "mode.seed": "--seed", "mode.full_length": "--full-length",
    "mode.phase_flip": "--phase-flip", "mode.output_format": "--output-format", "mode.drop_silence": "--drop-silence",
    "mode.random_crop": "random_crop (dataset config)",
}
_SHOWN = 5


def _leaves(value: Any, path: str, out: dict[str, Any]) -> dict[str, Any]:
    """``{"a.b": leaf}`` of nested dicts (lists are leaves)."""
    if isinstance(value, dict) and value:
        for key, item in value.items():
            _leaves(item, f"{path}.{key}" if path else str(key), out)
    else:
        out[path] = value
    return out


def _show(value: Any, absent: bool) -> str:
    if absent:
        return "absent"
    text = json.dumps(value, sort_keys=True)
    if isinstance(value, str) and len(value) == 64:  # a SHA-256
        text = json.dumps(value[:12] + "...")
    return text if len(text) <= 40 else text[:37] + "..."


def differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """The stored settings that differ between an existing output and this run, each as
    ``<setting> was <old>, now <new>`` (named by its flag where it has one; at most five per section)."""
    out: list[str] = []
    for key in _IDENTITY_KEYS:
        if old.get(key) == new.get(key):
            continue
        before = _leaves(old.get(key), key, {}) if key in old else {}
        after = _leaves(new.get(key), key, {}) if key in new else {}
        changed = [p for p in sorted(set(before) | set(after)) if before.get(p, ...) != after.get(p, ...)]
        for path in changed[:_SHOWN]:
            name = _SETTING_NAMES.get(path, path)
            out.append(f"{name} was {_show(before.get(path), path not in before)}, "
                       f"now {_show(after.get(path), path not in after)}")
        if len(changed) > _SHOWN:
            out.append(f"{len(changed) - _SHOWN} more in {key}")
    return out


def check_compatible(output: StorePath, new: dict[str, Any]) -> bool:
    """Raise when ``output`` holds a run with other settings; returns True when it holds this run's.

    Raises:
        UserError: the details file is unreadable, of another tool, of a format this version does not
            read, or records other settings.
    """
    old = read_details(output)
    if not old.exists:
        return False
    if old.problems:
        raise UserError(f"{old.problems[0]}.", "Remove it, or pass --overwrite to start the output over.")
    if old.is_reference:
        raise UserError(f"{output} holds output of another tool (its {DETAILS} has no format_version).",
                        "Choose another --output-path, or pass --overwrite to replace it.")
    diff = differences(old.data, new)
    if diff:
        raise UserError(f"{output} was encoded with other settings: {'; '.join(diff)}.",
                        "Re-run with the original settings to resume, choose another --output-path, "
                        "or pass --overwrite to start over.")
    return True
