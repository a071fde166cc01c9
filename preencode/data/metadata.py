"""Custom metadata modules: a ``.py`` file defining ``get_custom_metadata(info, audio) -> dict``.

A module is imported once per process (each DataLoader worker imports it on first use). Its
result is merged into the sample's metadata; ``__reject__`` true skips the sample, and
``__audio__`` (name -> tensor ``[C, T]`` or ``[T]``) adds audio entries windowed like the main
audio (see :class:`preencode.data.audio_windows.AudioWindowDataset`).
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import DatasetError

log = logging.getLogger(__name__)

CustomMetadataFn = Callable[[dict[str, Any], Any], dict[str, Any]]

_loaded: dict[tuple[int, str], CustomMetadataFn] = {}


def load_custom_metadata_fn(path: str) -> CustomMetadataFn:
    """``get_custom_metadata`` of the module at ``path`` (imported once per process).

    Raises:
        DatasetError: the file is missing, fails to import, or has no ``get_custom_metadata``.
    """
    key = (os.getpid(), str(Path(path).resolve()))
    if key in _loaded:
        return _loaded[key]
    file = Path(path)
    if not file.is_file():
        raise DatasetError(f"Custom metadata module {path} not found.", "Check 'custom_metadata_module'.")
    name = "preencode_custom_metadata_" + hashlib.sha1(key[1].encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise DatasetError(f"Custom metadata module {path} cannot be imported.", "It must be a .py file.")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as err:  # user code: any error in it is reported as a config problem
        raise DatasetError(f"Custom metadata module {path} failed to import: {type(err).__name__}: {err}.",
                           "Fix the module.") from err
    fn = getattr(module, "get_custom_metadata", None)
    if not callable(fn):
        raise DatasetError(f"Custom metadata module {path} defines no function get_custom_metadata(info, audio).",
                           "Add it; it returns a dict of extra metadata.")
    _loaded[key] = fn
    log.debug("Loaded custom metadata module %s in process %d", path, key[0])
    return fn
