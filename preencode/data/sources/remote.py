"""S3 access through fsspec/s3fs.

Credentials come from the standard AWS environment (variables, config files) or the dataset
entry's ``profile``; the endpoint from ``AWS_ENDPOINT_URL`` when set (for MinIO, moto, R2...).
fsspec caches one filesystem per set of options and per process, so DataLoader workers each get
their own client.
"""

from __future__ import annotations

import os

import fsspec
from fsspec.spec import AbstractFileSystem


def s3_filesystem(profile: str | None = None) -> AbstractFileSystem:
    """The s3fs filesystem for ``profile`` (None: default credentials)."""
    options: dict = {}
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        options["client_kwargs"] = {"endpoint_url": endpoint}
    if profile:
        options["profile"] = profile
    return fsspec.filesystem("s3", **options)


def is_s3(url: str) -> bool:
    return url.startswith("s3://")


def strip_scheme(url: str) -> str:
    return url[len("s3://"):] if is_s3(url) else url


def read_range(url: str, offset: int, size: int, profile: str | None = None) -> bytes:
    """``size`` bytes at ``offset`` of a local file or an S3 object (one range request).

    Raises:
        OSError: the file or object cannot be read, or is shorter than expected.
    """
    if is_s3(url):
        data = s3_filesystem(profile).cat_file(strip_scheme(url), start=offset, end=offset + size)
    else:
        with open(url, "rb") as f:
            f.seek(offset)
            data = f.read(size)
    if len(data) != size:
        raise OSError(f"expected {size} bytes at offset {offset}, got {len(data)} (the shard changed?)")
    return data
