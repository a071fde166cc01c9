"""Writing WebDataset tar shards for the tests."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

from tests.audio_files import tone, write_audio


def audio_bytes(fmt: str, seconds: float, sr: int, channels: int = 1, freq: float = 440.0) -> bytes:
    """A real encoded file of ``fmt`` as bytes (written to a temporary buffer path)."""
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        path = write_audio(Path(tmp) / f"x.{fmt}", tone(seconds, sr, channels, freq=freq), sr)
        return path.read_bytes()


def write_shard(path: Path, members: list[tuple[str, bytes]]) -> Path:
    """A tar with ``members`` (name, data) in the given order."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def sample_members(key: str, fmt: str = "flac", meta: dict | None = None, sr: int = 16000,
                   seconds: float = 0.5) -> list[tuple[str, bytes]]:
    members = [(f"{key}.{fmt}", audio_bytes(fmt, seconds, sr))]
    if meta is not None:
        members.append((f"{key}.json", json.dumps(meta).encode()))
    return members
