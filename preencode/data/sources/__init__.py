"""Input sources: local audio folders and WebDataset tar shards (local or S3)."""

from __future__ import annotations

from .audio_dir import FoundFile, scan_folder
from .items import Fingerprint, Item, TarMember
from .remote import read_range, s3_filesystem
from .wds import Shard, index_local_shard, index_s3_shard, index_tar, list_s3_shards, split_key

__all__ = [
    "Fingerprint", "FoundFile", "Item", "Shard", "TarMember", "index_local_shard", "index_s3_shard",
    "index_tar", "list_s3_shards", "read_range", "s3_filesystem", "scan_folder", "split_key",
]
