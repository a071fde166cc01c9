"""The plan: every input item of a dataset config, in a deterministic order, plus scan failures.

Items are sorted within each dataset (files by relative path; tar samples by shard path, then
member order) and datasets follow the config's order. ``item.index`` is the position in this list;
the encode engine then gives each item its 13-digit output id from the output's manifest (the
position itself for a new output; see :mod:`preencode.encode.engine.update`), so the same inputs give
the same ids on every run, whatever the number of ranks or workers.
"""

from __future__ import annotations

import functools
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from ..audio import AUDIO_EXTENSIONS
from ..errors import DatasetError, ResourceError
from .config import DatasetConfig, DatasetEntry
from .failures import Failure
from .metadata import load_custom_metadata_fn
from .sources import Item, scan_folder
from .sources.wds import index_local_shard, index_s3_shard, list_s3_shards, member_relpath, shards_from_found

log = logging.getLogger(__name__)

_INDEX_THREADS = 8


@dataclass
class Plan:
    """``items`` in sorted order (``items[i].index == i`` until ids are assigned) and the inputs that failed while
    scanning."""

    items: list[Item] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.items)


def build_plan(config: DatasetConfig, extensions: tuple[str, ...] = AUDIO_EXTENSIONS) -> Plan:
    """Scan every dataset of ``config`` (``audio_dir`` or ``wds``).

    Custom metadata modules are imported once here, so that a broken module stops the run before
    any work instead of failing every sample.

    Raises:
        DatasetError: a config of latents (pre_encoded), a dataset folder that does not exist, an S3 prefix that
            cannot be listed, a broken custom metadata module, or no input at all.
    """
    if config.dataset_type not in ("audio_dir", "wds"):
        raise DatasetError(f"Cannot pre-encode a {config.dataset_type!r} dataset config.",
                           "Use a config with dataset_type 'audio_dir' or 'wds'.")
    if config.holds_latents:
        raise DatasetError("Cannot pre-encode a dataset config with \"pre_encoded\": true: its shards hold latents, "
                           "not audio.", "Use the dataset config of the audio, or remove \"pre_encoded\".")
    _warn_ignored_options(config)
    plan = Plan()
    for entry in config.datasets:
        if entry.custom_metadata_module:
            load_custom_metadata_fn(entry.custom_metadata_module)
        before = len(plan.items)
        if config.dataset_type == "audio_dir":
            _add_audio_dir(plan, entry, extensions)
        else:
            _add_wds(plan, entry)
        count = len(plan.items) - before
        log.info("Dataset %r: %d inputs", entry.id, count)
        if count == 0:
            log.warning("Dataset %r (%s) has no audio inputs", entry.id, entry.path or entry.s3_path)
    if not plan.items:
        where = ", ".join(str(e.path or e.s3_path) for e in config.datasets)
        raise DatasetError(f"No audio inputs found in {where} ({len(plan.failures)} scan failures).",
                           f"Check the paths; audio files need one of the extensions {', '.join(extensions)}.")
    return plan


def _warn_ignored_options(config: DatasetConfig) -> None:
    if config.raw.get("drop_last") is True:
        log.warning("drop_last is ignored for pre-encoding: the last, partial batch is encoded too.")
    for key in ("remove_silence", "volume_norm"):
        if config.raw.get(key):
            log.warning("%s is a training-time option of the reference and is not applied when pre-encoding.", key)


def _append(plan: Plan, entry: DatasetEntry, path: str, relpath: str, fingerprint, member=None) -> None:
    plan.items.append(Item(len(plan.items), entry.id, path, relpath, fingerprint, member,
                           entry.custom_metadata_module, entry.profile))


def _local_root(entry: DatasetEntry) -> str:
    root = entry.path or ""
    if not os.path.isdir(root):
        what = "does not exist" if not os.path.exists(root) else "is not a folder"
        raise DatasetError(f"Dataset {entry.id!r}: path {root} {what}.", "Fix 'path' in the dataset config.")
    return root


def _add_audio_dir(plan: Plan, entry: DatasetEntry, extensions: tuple[str, ...]) -> None:
    found, failures = scan_folder(_local_root(entry), extensions, entry.id)
    plan.failures.extend(failures)
    for f in found:
        _append(plan, entry, f.path, f.relpath, f.fingerprint)


def _add_wds(plan: Plan, entry: DatasetEntry) -> None:
    if entry.s3_path:
        try:
            shards = list_s3_shards(entry.s3_path, entry.profile)
        except Exception as err:  # botocore's errors are not OSErrors: the known ones are sorted below
            known = s3_listing_error(entry, err)
            if known is None:
                raise
            raise known from err
        index = functools.partial(index_s3_shard, profile=entry.profile, dataset_id=entry.id)
    else:
        found, failures = scan_folder(_local_root(entry), ("tar",), entry.id)
        plan.failures.extend(failures)
        shards = shards_from_found(found)
        index = functools.partial(index_local_shard, dataset_id=entry.id)
    # Indexing reads headers (I/O bound): shards are indexed in parallel, results kept in shard order.
    with ThreadPoolExecutor(max_workers=_INDEX_THREADS) as pool:
        indexed = list(pool.map(index, shards))
    for shard, (members, failures) in zip(shards, indexed, strict=True):
        plan.failures.extend(failures)
        for m in members:
            _append(plan, entry, f"{shard.url}#{m.name}", member_relpath(shard, m.name), shard.fingerprint, m)


def s3_listing_error(entry: DatasetEntry, err: Exception) -> Exception | None:
    """The one-line error for an S3 prefix that cannot be listed (after s3fs's and botocore's bounded
    retries with backoff): the environment's (exit 1: endpoint unreachable, unknown profile, no
    credentials, access denied) or the config's (exit 2: no such bucket or prefix); None for others."""
    from botocore.exceptions import BotoCoreError, EndpointConnectionError, NoCredentialsError, ProfileNotFound

    where = f"Dataset {entry.id!r}: cannot list {entry.s3_path}"
    endpoint = os.environ.get("AWS_ENDPOINT_URL") or "the default AWS endpoint"
    if isinstance(err, EndpointConnectionError):
        return ResourceError(f"{where}: the S3 endpoint {endpoint} cannot be reached.",
                             "Check AWS_ENDPOINT_URL and the network, then re-run.")
    if isinstance(err, ProfileNotFound):
        return ResourceError(f"{where}: the AWS profile {entry.profile!r} is not in this machine's AWS config.",
                             "Add it to ~/.aws/config (or AWS_CONFIG_FILE), or fix 'profile' in the dataset config.")
    if isinstance(err, NoCredentialsError):
        return ResourceError(f"{where}: no AWS credentials were found.",
                             "Set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or a profile with credentials.")
    if isinstance(err, PermissionError):
        return ResourceError(f"{where}: access denied ({err}).",
                             "Check the credentials (and profile) and the bucket's permissions.")
    if isinstance(err, BotoCoreError):
        return ResourceError(f"{where} ({err}).", "Check AWS_ENDPOINT_URL, the credentials and the network.")
    if isinstance(err, (OSError, ValueError)):
        return DatasetError(f"{where} ({err}).", "Check the bucket and prefix in the dataset config.")
    return None
