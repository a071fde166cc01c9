"""Writing latents atomically, in a background thread with a bounded queue.

Each file is written to a temporary name and renamed, the ``.npy`` last: it marks the sample as
complete, so a killed run never leaves a truncated or orphaned latent that a loader would pick up.
"""

from __future__ import annotations

import io
import json
import logging
import math
import os
import queue
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .layout import format_id

log = logging.getLogger(__name__)


@dataclass
class EncodedSample:
    """One encoded input: ``latent`` ``[latent_dim, N]`` (or tokens ``[n_q, N]``) and its metadata."""

    index: int
    latent: np.ndarray
    metadata: dict[str, Any]
    std: np.ndarray | None = None


def json_safe(value: Any) -> Any:
    """Convert numpy/torch values to plain JSON types (NaN/Inf become None)."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "detach"):  # torch tensor
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def _write_tmp(path: Path, payload: bytes) -> Path:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(payload)
    return tmp


def npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array))
    return buf.getvalue()


class NpyWriter:
    """Writes ``<rank_dir>/<id>.json`` (+ ``<id>.std.npz``) and ``<id>.npy``.

    Every file is first written in full under a temporary name; the renames then put the ``.npy`` in
    place last, so it is the commit marker: loaders (ours and stable-audio-tools') look for ``.npy``
    files, and a killed run can at worst leave a ``.json`` or temporary file that no loader reads and
    the next run removes.
    """

    def __init__(self, rank_dir: Path) -> None:
        self.rank_dir = rank_dir
        rank_dir.mkdir(parents=True, exist_ok=True)

    def write(self, sample: EncodedSample) -> None:
        stem = format_id(sample.index)
        final = [self.rank_dir / f"{stem}.json"]
        meta = json.dumps(json_safe(sample.metadata), ensure_ascii=False).encode("utf-8")
        temps = [_write_tmp(final[0], meta)]
        if sample.std is not None:
            buf = io.BytesIO()
            np.savez(buf, std=sample.std)
            final.append(self.rank_dir / f"{stem}.std.npz")
            temps.append(_write_tmp(final[-1], buf.getvalue()))
        final.append(self.rank_dir / f"{stem}.npy")
        temps.append(_write_tmp(final[-1], npy_bytes(sample.latent)))
        for tmp, path in zip(temps, final):
            os.replace(tmp, path)

    def close(self) -> None:
        pass


class BackgroundWriter:
    """Runs a writer's ``write`` in a thread; ``put`` blocks when ``max_pending`` samples are queued.

    An error in the thread is re-raised by the next ``put`` or by ``close``.
    """

    def __init__(self, writer: Any, max_pending: int = 64) -> None:
        self.writer = writer
        self.queue: queue.Queue = queue.Queue(maxsize=max_pending)
        self.error: BaseException | None = None
        self.written = 0
        self.thread = threading.Thread(target=self._run, name="preencode-writer", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            item = self.queue.get()
            if item is None:
                return
            if self.error is not None:
                continue
            try:
                self.writer.write(item)
                self.written += 1
            except OSError as err:  # disk full, permissions: stop and report
                self.error = err

    def put(self, sample: EncodedSample) -> None:
        if self.error is not None:
            raise self.error
        self.queue.put(sample)

    def close(self) -> None:
        self.queue.put(None)
        self.thread.join()
        self.writer.close()
        if self.error is not None:
            raise self.error
