"""The S3 client of the store and of the input sources: endpoint, profile, credentials, and one retry budget.

Endpoint, profile and credentials are found as botocore finds them (``AWS_PROFILE``, ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, ``AWS_DEFAULT_REGION``, the config files), the endpoint in
``AWS_ENDPOINT_URL`` (MinIO, R2, moto), plus a dataset entry's ``profile``: :func:`s3_filesystem` is the one
place that does it, for inputs (:mod:`preencode.data.sources`) and outputs (:mod:`preencode.store.objects`).

:func:`retrying` sends a request again on transient errors (connection failures, timeouts, throttling, HTTP 5xx)
with exponential backoff and jitter, as :class:`RetryPolicy` says; the store's client has botocore's and s3fs's
own retries turned off so that the budget is counted once. After the budget, or at once for a permanent error
(access denied, no credentials, an unknown profile), a :class:`~preencode.errors.StorageError` says what failed in
one line (exit code 1). A missing object stays a :class:`FileNotFoundError` when reading, for the caller to decide.
"""

from __future__ import annotations

import errno
import logging
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import StorageError

if TYPE_CHECKING:
    from fsspec.spec import AbstractFileSystem

log = logging.getLogger(__name__)

T = TypeVar("T")

S3_SCHEME = "s3://"
_TRANSIENT_CODES = frozenset({"SlowDown", "Throttling", "ThrottlingException", "RequestTimeout", "InternalError",
                              "ServiceUnavailable", "RequestLimitExceeded", "TooManyRequestsException"})
_TRANSIENT_ERRNOS = frozenset({errno.EBUSY, errno.ETIMEDOUT, errno.EAGAIN, getattr(errno, "EREMOTEIO", errno.EIO)})
# What decides which client is used: a change (e.g. another endpoint) gets a new client.
_AWS_VARIABLES = ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                  "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION", "AWS_REGION")
_clients: dict[tuple[Any, ...], AbstractFileSystem] = {}


def is_s3_url(url: object) -> bool:
    """Whether ``url`` is a string naming an S3 object or prefix (``s3://bucket/...``)."""
    return isinstance(url, str) and url.startswith(S3_SCHEME)


def strip_scheme(url: str) -> str:
    """``s3://bucket/key`` -> ``bucket/key`` (other strings unchanged)."""
    return url[len(S3_SCHEME):] if is_s3_url(url) else url


def s3_filesystem(profile: str | None = None, *, client_retries: bool = True) -> AbstractFileSystem:
    """The s3fs filesystem for ``profile`` (None: the default credentials), at ``AWS_ENDPOINT_URL`` when set.

    Args:
        client_retries: keep botocore's and s3fs's own retries (the input sources); False turns them off for
            callers that retry themselves (:class:`ObjectPath`). Each process gets its own client either way.
    """
    import fsspec  # imported when S3 is used: the tools start faster without it

    options: dict[str, Any] = {}
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        options["client_kwargs"] = {"endpoint_url": endpoint}
    if profile:
        options["profile"] = profile
    if client_retries:
        return fsspec.filesystem("s3", **options)
    key = (os.getpid(), profile, *(os.environ.get(name) for name in _AWS_VARIABLES))
    fs = _clients.get(key)
    if fs is None:
        fs = fsspec.filesystem("s3", skip_instance_cache=True,
                               config_kwargs={"retries": {"total_max_attempts": 1}}, **options)
        fs.retries = 1  # s3fs's own loop: a single attempt
        _clients[key] = fs
    return fs


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a request is retried on a transient error.

    Attempt ``n`` (from 1) that fails waits ``min(max_delay, first_delay * 2**(n-1))``, scaled by a random
    factor in [0.5, 1] (so that ranks do not retry in step), before attempt ``n + 1``; ``attempts`` in all.
    The defaults give up after about 3 s of waiting on a refused connection.
    """

    attempts: int = 5
    first_delay: float = 0.25
    max_delay: float = 4.0

    def delay(self, attempt: int) -> float:
        return min(self.max_delay, self.first_delay * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)


DEFAULT_RETRY = RetryPolicy()


def _response(err: BaseException) -> dict[str, Any]:
    """The S3 answer behind an error (s3fs keeps botocore's ClientError as the cause), or {}."""
    for candidate in (err, err.__cause__):
        response = getattr(candidate, "response", None)
        if isinstance(response, dict):
            return response
    return {}


def is_transient(err: BaseException) -> bool:
    """Whether a failed request may succeed when sent again: no connection, a timeout, throttling, HTTP 5xx."""
    from botocore import exceptions as boto

    if isinstance(err, (boto.ConnectionError, boto.HTTPClientError, TimeoutError, ConnectionError)):
        return True
    response = _response(err)
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if response.get("Error", {}).get("Code") in _TRANSIENT_CODES:
        return True
    if isinstance(status, int) and (status >= 500 or status == 429):
        return True
    if isinstance(err, OSError) and err.errno in _TRANSIENT_ERRNOS:
        return True
    try:
        import aiohttp
    except ImportError:  # pragma: no cover - s3fs depends on it
        return False
    return isinstance(err, aiohttp.ClientError)


def _is_storage_failure(err: BaseException) -> bool:
    """Errors of the storage service or the way to it (not bugs of ours, which propagate unchanged)."""
    from botocore import exceptions as boto

    return isinstance(err, (OSError, boto.BotoCoreError, boto.ClientError)) or is_transient(err)


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def _endpoint() -> str:
    return os.environ.get("AWS_ENDPOINT_URL") or "the default AWS endpoint"


def _permanent(err: BaseException, what: str, url: str) -> StorageError:
    from botocore import exceptions as boto

    if isinstance(err, PermissionError):
        return StorageError(f"Access denied: cannot {what} {url} ({_one_line(err)}).",
                            "Check the AWS credentials or profile (AWS_PROFILE, AWS_ACCESS_KEY_ID) and the bucket's "
                            "permissions.")
    if isinstance(err, (boto.NoCredentialsError, boto.PartialCredentialsError)):
        return StorageError(f"No AWS credentials to {what} {url}.",
                            "Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE (or the dataset "
                            "entry's profile).")
    if isinstance(err, boto.ProfileNotFound):
        return StorageError(f"Cannot {what} {url}: {_one_line(err)}.",
                            "Name a profile of ~/.aws/config, or unset AWS_PROFILE.")
    if isinstance(err, FileNotFoundError):
        return StorageError(f"Cannot {what} {url}: {_one_line(err)} (bucket missing?).",
                            "Check the bucket name, and AWS_ENDPOINT_URL for a server other than AWS.")
    return StorageError(f"Cannot {what} {url} at {_endpoint()}: {_one_line(err)}.",
                        "Check the bucket name, AWS_ENDPOINT_URL and the credentials.")


def retrying(call: Callable[[], T], what: str, url: str, policy: RetryPolicy = DEFAULT_RETRY, *,
             missing_ok: bool = True) -> T:
    """``call()``, sent again after a transient error as ``policy`` allows.

    Args:
        what: the action, for messages (``"read"``, ``"upload part 2 of"``).
        url: the object, for messages.
        missing_ok: let a :class:`FileNotFoundError` through (reads); False makes it a StorageError (writes:
            the bucket is missing).

    Raises:
        FileNotFoundError: the object (or bucket) does not exist and ``missing_ok``.
        StorageError: a permanent error, or transient errors until the budget was spent.
    """
    start = time.monotonic()
    attempt = 1
    while True:
        try:
            return call()
        except Exception as err:  # sorted out below: anything that is not the storage's propagates unchanged
            if isinstance(err, FileNotFoundError) and missing_ok:
                raise
            if not _is_storage_failure(err):
                raise
            if not is_transient(err):
                raise _permanent(err, what, url) from err
            if attempt >= policy.attempts:
                elapsed = time.monotonic() - start
                raise StorageError(
                    f"Cannot {what} {url}: {_one_line(err)} (gave up after {attempt} attempts in {elapsed:.1f} s, "
                    f"endpoint {_endpoint()}).",
                    "Check the network, AWS_ENDPOINT_URL and the credentials, then run the command again.") from err
            pause = policy.delay(attempt)
            log.info("S3: could not %s %s (%s); attempt %d of %d in %.2f s", what, url, _one_line(err),
                     attempt + 1, policy.attempts, pause)
            time.sleep(pause)
            attempt += 1
