"""One encoded sample and the bytes of its files, identical whichever writer stores them."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

from .meta import LatentMeta
from .names import LATENT, META, STD, format_id


@dataclass
class EncodedSample:
    """One encoded input.

    Attributes:
        index: the input's id (its position in the sorted input list, unless --update numbered it later).
        latent: ``[latent_dim, N]`` (or tokens ``[n_q, N]``).
        meta: what goes to ``<id>.json``.
        std: the posterior std ``[latent_dim, N]`` with ``--store-std``, else ``None``.
    """

    index: int
    latent: np.ndarray
    meta: LatentMeta
    std: np.ndarray | None = None

    @property
    def id(self) -> str:
        return format_id(self.index)


def npy_bytes(array: np.ndarray) -> bytes:
    """``array`` as ``np.save`` writes it."""
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array))
    return buf.getvalue()


def std_bytes(std: np.ndarray) -> bytes:
    """The ``.std.npz`` sidecar: one array named ``std``."""
    buf = io.BytesIO()
    np.savez(buf, std=std)
    return buf.getvalue()


def sample_files(sample: EncodedSample) -> list[tuple[str, bytes]]:
    """``(file name, bytes)`` of a sample's files: ``<id>.npy``, ``<id>.json`` and, with a std, ``<id>.std.npz``."""
    files = [(sample.id + LATENT, npy_bytes(sample.latent)), (sample.id + META, sample.meta.to_json())]
    if sample.std is not None:
        files.append((sample.id + STD, std_bytes(sample.std)))
    return files
