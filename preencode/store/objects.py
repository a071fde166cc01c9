"""Output trees in S3 object storage: objects written whole, read by range, listed.

S3 has no rename, but an object becomes visible only when the request that writes it succeeds: a
``PutObject``, or the ``CompleteMultipartUpload`` of an upload in parts. That request is the commit, as the
rename is on disk (:mod:`preencode.store.atomic`): a reader lists complete objects or nothing. Small files
(details, manifest, logs) are written whole with one PUT (:meth:`ObjectPath.write_bytes`); a shard is written
to a local file first, then uploaded (:meth:`ObjectPath.upload`): one PUT below ``threshold`` bytes, else
parts of ``part_size`` bytes and a completion. An upload that fails is aborted, so no part is left behind.

:class:`ObjectPath` is an object or a prefix with the part of :class:`pathlib.Path` that the store's readers
use (``/``, ``name``, ``parent``, ``is_file``, ``read_bytes``, ...), so one reading code serves local trees
and trees in a bucket (:data:`StorePath`). Every request goes through :func:`~preencode.store.s3_client.retrying`
(bounded retries, then one :class:`~preencode.errors.StorageError`); credentials and endpoint are those of
:func:`~preencode.store.s3_client.s3_filesystem`.
"""

from __future__ import annotations

import functools
import hashlib
import io
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, TypeAlias

from ..errors import StorageError, UserError
from .s3_client import (
    DEFAULT_RETRY,
    S3_SCHEME,
    RetryPolicy,
    is_s3_url,
    retrying,
    s3_filesystem,
    strip_scheme,
)

if TYPE_CHECKING:
    from fsspec.spec import AbstractFileSystem

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_RETRY", "ObjectInfo", "ObjectPath", "RetryPolicy", "StorePath", "is_s3_url", "retrying",
           "s3_filesystem", "store_path", "strip_scheme"]

#: S3's smallest part (every part but the last) and largest number of parts of one upload.
MIN_PART_SIZE = 5 * 2**20
MAX_PARTS = 10_000
#: Defaults of :meth:`ObjectPath.upload`: files from this size on are uploaded in parts of this size.
MULTIPART_THRESHOLD = 64 * 2**20
PART_SIZE = 64 * 2**20
#: Bytes per ranged GET when an object is read front to back (:meth:`ObjectPath.open_stream`).
STREAM_CHUNK = 16 * 2**20
#: Keys per listing request (S3 answers at most 1000).
LIST_PAGE = 1000


@dataclass(frozen=True)
class ObjectInfo:
    """An object found by listing: where it is, its size in bytes and its ETag (quotes included)."""

    path: ObjectPath
    size: int
    etag: str | None = None


class _RangeReader(io.RawIOBase):
    """An object read front to back by ranged GETs (each one retried)."""

    def __init__(self, obj: ObjectPath, size: int) -> None:
        self.obj, self.size, self.pos = obj, size, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.pos >= self.size:
            return 0
        data = self.obj.read_range(self.pos, min(len(buffer), self.size - self.pos))
        if not data:
            raise OSError(f"{self.obj} ended at {self.pos} of {self.size} bytes (it changed while being read)")
        buffer[:len(data)] = data
        self.pos += len(data)
        return len(data)


class ObjectPath:
    """An S3 object or prefix (``s3://bucket/key``), with the part of :class:`pathlib.Path` the store uses.

    Args:
        url: ``s3://bucket`` or ``s3://bucket/key``; a trailing ``/`` is dropped (a prefix is the "folder" of the
            keys below it).
        profile: the AWS profile (None: the default credentials).
        policy: retries of every request.

    Raises:
        UserError: the URL names no bucket.
    """

    def __init__(self, url: str, profile: str | None = None, policy: RetryPolicy = DEFAULT_RETRY) -> None:
        bucket, _, key = strip_scheme(url).partition("/")
        if not is_s3_url(url) or not bucket:
            raise UserError(f"{url!r} is not an S3 URL with a bucket.", "Write s3://bucket/prefix.")
        self.bucket, self.key = bucket, key.strip("/")
        self.profile, self.policy = profile, policy

    def __str__(self) -> str:
        return f"{S3_SCHEME}{self.bucket}/{self.key}" if self.key else f"{S3_SCHEME}{self.bucket}"

    def __repr__(self) -> str:
        return f"ObjectPath({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ObjectPath) and (str(self), self.profile) == (str(other), other.profile)

    def __hash__(self) -> int:
        return hash(str(self))

    def __lt__(self, other: ObjectPath) -> bool:
        return str(self) < str(other)

    def __truediv__(self, name: str) -> ObjectPath:
        name = name.strip("/")
        return ObjectPath(f"{self}/{name}" if name else str(self), self.profile, self.policy)

    @property
    def name(self) -> str:
        return self.key.rpartition("/")[2]

    @property
    def parent(self) -> ObjectPath:
        return ObjectPath(f"{S3_SCHEME}{self.bucket}/{self.key.rpartition('/')[0]}", self.profile, self.policy)

    @property
    def _fs(self) -> AbstractFileSystem:
        return s3_filesystem(self.profile, client_retries=False)

    def _s3(self, what: str, method: str, missing_ok: bool = True, **kwargs: Any) -> Any:
        call = functools.partial(self._fs.call_s3, method, Bucket=self.bucket, **kwargs)
        return retrying(call, what, str(self), self.policy, missing_ok=missing_ok)

    # reading

    def stat(self) -> ObjectInfo | None:
        """Size and ETag of the object, None when there is none."""
        try:
            head = self._s3("look up", "head_object", Key=self.key)
        except FileNotFoundError:
            return None
        return ObjectInfo(self, int(head["ContentLength"]), head.get("ETag"))

    def is_file(self) -> bool:
        return bool(self.key) and self.stat() is not None

    def is_dir(self) -> bool:
        """Whether any object lies below this prefix (False for a missing bucket)."""
        try:
            page = self._s3("list", "list_objects_v2", Prefix=self._prefix(), MaxKeys=1)
        except FileNotFoundError:
            return False
        return bool(page.get("Contents"))

    def exists(self) -> bool:
        return self.is_file() or self.is_dir()

    def read_bytes(self) -> bytes:
        """The whole object. Raises FileNotFoundError, StorageError."""
        path = f"{self.bucket}/{self.key}"
        return retrying(lambda: self._fs.cat_file(path), "read", str(self), self.policy)

    def read_text(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        return self.read_bytes().decode(encoding, errors)

    def read_range(self, offset: int, size: int) -> bytes:
        """``size`` bytes from ``offset`` (fewer at the end of the object), with one ranged GET."""
        path = f"{self.bucket}/{self.key}"
        return retrying(lambda: self._fs.cat_file(path, start=offset, end=offset + size), "read", str(self),
                        self.policy)

    def open_stream(self, size: int | None = None, chunk_size: int = STREAM_CHUNK) -> BinaryIO:
        """The object as a file read front to back in ranged GETs of ``chunk_size`` bytes (``size``: its size
        when known from a listing, else looked up). Raises FileNotFoundError, StorageError."""
        if size is None:
            info = self.stat()
            if info is None:
                raise FileNotFoundError(str(self))
            size = info.size
        return io.BufferedReader(_RangeReader(self, size), buffer_size=chunk_size)

    def _prefix(self) -> str:
        return f"{self.key}/" if self.key else ""

    def _pages(self, delimiter: bool) -> tuple[list[ObjectInfo], list[str]]:
        prefix = self._prefix()
        request: dict[str, Any] = {"Prefix": prefix, "MaxKeys": LIST_PAGE}
        if delimiter:
            request["Delimiter"] = "/"
        objects: list[ObjectInfo] = []
        folders: list[str] = []
        while True:  # S3 pages forward until IsTruncated is false
            page = self._s3("list", "list_objects_v2", **request)
            for item in page.get("Contents", []):
                name = item["Key"][len(prefix):]
                if name and not name.endswith("/"):  # "folder" marker objects are not files
                    objects.append(ObjectInfo(self / name, int(item["Size"]), item.get("ETag")))
            folders.extend(p["Prefix"][len(prefix):].rstrip("/") for p in page.get("CommonPrefixes", []))
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token or token == request.get("ContinuationToken"):
                return objects, folders
            request["ContinuationToken"] = token

    def list_dir(self) -> tuple[list[ObjectInfo], list[str]]:
        """The objects directly below this prefix, and the names of the sub-prefixes ("folders")."""
        return self._pages(delimiter=True)

    def list_all(self) -> list[ObjectInfo]:
        """Every object below this prefix, at any depth, sorted by key."""
        return sorted(self._pages(delimiter=False)[0], key=lambda info: info.path.key)

    # writing: each call below is one commit

    def write_bytes(self, data: bytes) -> None:
        """Write the object whole with one PUT: readers see the old object or the new one, never a part."""
        self._s3("write", "put_object", missing_ok=False, Key=self.key, Body=data)

    def write_text(self, text: str, encoding: str = "utf-8") -> None:
        self.write_bytes(text.encode(encoding))

    def upload(self, local: Path, *, threshold: int = MULTIPART_THRESHOLD, part_size: int = PART_SIZE,
               on_part: Callable[[int, int], None] | None = None) -> None:
        """Copy the complete local file ``local`` to this object, as one commit.

        Below ``threshold`` bytes: one PUT. Otherwise a multipart upload of ``part_size`` parts (at least S3's
        5 MiB, and large enough for at most 10,000 parts), completed at the end; until then no object of this
        name appears (an older one stays readable). On any failure, or an interrupt, the upload is aborted.

        Args:
            on_part: called after each uploaded part with its number and the bytes sent so far.

        Raises:
            StorageError: the upload failed (it was aborted).
        """
        size = local.stat().st_size
        if size < threshold:
            self.write_bytes(local.read_bytes())
            return
        part_size = max(part_size, MIN_PART_SIZE, -(-size // MAX_PARTS))
        upload_id = self._s3("start an upload to", "create_multipart_upload", missing_ok=False,
                             Key=self.key)["UploadId"]
        try:
            parts, digests = self._upload_parts(local, upload_id, part_size, on_part)
            self._complete(upload_id, parts, digests)
        except BaseException:
            self._abort(upload_id)
            raise
        log.debug("Uploaded %s (%d bytes, %d parts)", self, size, len(parts))

    def _upload_parts(self, local: Path, upload_id: str, part_size: int,
                      on_part: Callable[[int, int], None] | None) -> tuple[list[dict[str, Any]], list[bytes]]:
        parts: list[dict[str, Any]] = []
        digests: list[bytes] = []
        with open(local, "rb") as f:
            for number in range(1, MAX_PARTS + 1):
                chunk = f.read(part_size)
                if not chunk:
                    break
                answer = self._s3(f"upload part {number} of", "upload_part", missing_ok=False, Key=self.key,
                                  UploadId=upload_id, PartNumber=number, Body=chunk)
                parts.append({"PartNumber": number, "ETag": answer["ETag"]})
                digests.append(hashlib.md5(chunk, usedforsecurity=False).digest())
                if on_part is not None:
                    on_part(number, f.tell())
        return parts, digests

    def _complete(self, upload_id: str, parts: list[dict[str, Any]], digests: list[bytes]) -> None:
        # S3's ETag of a multipart object: the MD5 of the parts' MD5s, and the number of parts.
        expected = f'"{hashlib.md5(b"".join(digests), usedforsecurity=False).hexdigest()}-{len(parts)}"'
        tries = 0

        def complete() -> None:
            nonlocal tries
            tries += 1
            try:
                self._fs.call_s3("complete_multipart_upload", Bucket=self.bucket, Key=self.key, UploadId=upload_id,
                                 MultipartUpload={"Parts": parts})
            except FileNotFoundError:
                # NoSuchUpload on a second try: the first one completed, its answer was lost on the way.
                info = self.stat() if tries > 1 else None
                if info is None or info.etag != expected:
                    raise

        retrying(complete, "finish the upload of", str(self), self.policy, missing_ok=False)

    def _abort(self, upload_id: str) -> None:
        try:
            self._s3("abort the upload of", "abort_multipart_upload", Key=self.key, UploadId=upload_id)
        except (StorageError, OSError) as err:  # the error that made us abort is the one to report
            log.warning("Could not abort the unfinished upload %s of %s (%s); a bucket lifecycle rule for "
                        "incomplete multipart uploads removes it.", upload_id, self, err)

    def unlink(self, missing_ok: bool = False) -> None:
        """Delete the object (S3 answers a delete of a missing key with success: ``missing_ok`` is kept for
        the :class:`pathlib.Path` signature)."""
        self._s3("delete", "delete_object", missing_ok=missing_ok, Key=self.key)


#: A folder or file of an output tree: on disk, or in a bucket.
StorePath: TypeAlias = Path | ObjectPath


def store_path(location: str | os.PathLike[str] | ObjectPath) -> StorePath:
    """``s3://...`` as an :class:`ObjectPath`, anything else as a local :class:`pathlib.Path`."""
    if isinstance(location, ObjectPath):
        return location
    if is_s3_url(location):
        return ObjectPath(str(location))
    return Path(location)
