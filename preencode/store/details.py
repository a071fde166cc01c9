"""``details.json``: the self-description of an output folder, and the check that a re-run matches it."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import UserError

FORMAT_VERSION = 1
DETAILS = "details.json"

# Settings that change what is stored: a resumed run must use the same ones.
_IDENTITY_KEYS = ("model_config", "checkpoint_sha256", "sample_size", "latent", "dataset_config",
                  "mode")


def build_details(*, model_config: dict, dataset_config: dict, sample_size: int, args: dict,
                  checkpoint_sha256: str, latent: dict, mode: dict) -> dict[str, Any]:
    """The content of details.json (configs stored as CONTENTS, not paths)."""
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


def read_details(output: Path) -> dict[str, Any] | None:
    path = output / DETAILS
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{path} is not valid JSON ({err}).",
                        "Remove it, or pass --overwrite to start the output over.") from err


def differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Names of the stored settings that differ between an existing output and this run."""
    out = []
    for key in _IDENTITY_KEYS:
        if old.get(key) != new.get(key):
            if isinstance(old.get(key), dict) and isinstance(new.get(key), dict):
                subs = sorted(k for k in set(old[key]) | set(new[key]) if old[key].get(k) != new[key].get(k))
                out.append(f"{key} ({', '.join(subs)})" if subs and len(subs) <= 5 else key)
            else:
                out.append(f"{key} ({old.get(key)!r} -> {new.get(key)!r})"
                           if not isinstance(new.get(key), dict) else key)
    return out


def check_compatible(output: Path, new: dict[str, Any]) -> bool:
    """Raise when ``output`` holds a run with other settings; returns True when it holds this run's."""
    old = read_details(output)
    if old is None:
        return False
    if "format_version" not in old:
        raise UserError(f"{output} holds output of another tool (its details.json has no format_version).",
                        "Choose another --output-path, or pass --overwrite to replace it.")
    diff = differences(old, new)
    if diff:
        raise UserError(f"{output} was encoded with other settings: {'; '.join(diff)} differ.",
                        "Re-run with the original settings to resume, choose another --output-path, "
                        "or pass --overwrite to start over.")
    return True


def write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
