"""Reading input bytes by range, from a local file or an S3 object.

S3 access goes through :func:`preencode.store.s3_client.s3_filesystem`, the one place that finds the endpoint
(``AWS_ENDPOINT_URL``), profile and credentials for inputs and outputs alike. fsspec caches one filesystem per
set of options and per process, so DataLoader workers each get their own client.
"""

from __future__ import annotations

from ...store.s3_client import is_s3_url, s3_filesystem, strip_scheme


def read_range(url: str, offset: int, size: int, profile: str | None = None) -> bytes:
    """``size`` bytes at ``offset`` of a local file or an S3 object (one range request).

    Raises:
        OSError: the file or object cannot be read, or is shorter than expected.
    """
    if is_s3_url(url):
        data = s3_filesystem(profile).cat_file(strip_scheme(url), start=offset, end=offset + size)
    else:
        with open(url, "rb") as f:
            f.seek(offset)
            data = f.read(size)
    if len(data) != size:
        raise OSError(f"expected {size} bytes at offset {offset}, got {len(data)} (the shard changed?)")
    return data
