"""An output tree written to S3 (moto's real server on 127.0.0.1): shards uploaded whole from a bounded spool,
numbered after the committed ones; ownership, the lock object, what a resume finds, --overwrite."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest

from preencode.errors import ResourceError, StorageError, UserError
from preencode.store.details import write_details
from preencode.store.objects import ObjectPath
from preencode.store.ownership import Ownership
from preencode.store.resume import Expected
from preencode.store.s3_output import (
    ShardScan,
    UploadingShardWriter,
    acquire_remote_lock,
    check_remote_ownership,
    check_remote_run_lock,
    remote_shard_summary,
    remove_remote_output,
    scan_remote_done,
)
from tests.s3_server import client, keys
from tests.store.trees import details, make_items


def _write(spool, root, items, shard_size=2):
    writer = UploadingShardWriter(spool / "0", root / "0", shard_size)
    for item in items:
        writer.write(item.sample())
        assert len(list((spool / "0").iterdir())) <= 1  # the open shard only: uploaded ones leave the spool
    writer.close()
    return writer


def test_shards_are_uploaded_whole_numbered_after_the_committed_ones_and_leave_the_spool(tmp_path, s3_bucket,
                                                                                        aws_env):
    root = ObjectPath(f"s3://{s3_bucket}/out")
    write_details(root, details())
    items = make_items(ranks=(5,))
    _write(tmp_path / "spool", root, items[:3])  # shards 0 (2 samples) and 1 (1, at close)
    _write(tmp_path / "spool2", root, items[3:])  # a resumed run: numbers go on after the committed shards
    assert keys(aws_env, s3_bucket, "out/0/") == [f"out/0/shard-00000{n}.tar" for n in range(3)]
    assert list((tmp_path / "spool" / "0").iterdir()) == [] and list((tmp_path / "spool2" / "0").iterdir()) == []
    scan, damaged = scan_remote_done(root, Expected.from_details(details()), ShardScan())
    assert scan.done == {int(it.id) for it in items} and damaged == [] and scan.damaged == []
    summary = remote_shard_summary(root)
    assert summary["shard_urls"] == f"{root}/0/shard-{{000000..000002}}.tar" and summary["shards"] == 3
    assert (root / "shards.txt").read_text().split() == [f"0/shard-00000{n}.tar" for n in range(3)]


def test_a_failed_upload_commits_nothing_and_is_a_storage_error(tmp_path, s3_bucket, aws_env, monkeypatch):
    root = ObjectPath(f"s3://{s3_bucket}/out")

    def refuse(self, local, **kwargs):
        raise StorageError("Cannot write: the network is down.")

    monkeypatch.setattr(ObjectPath, "upload", refuse)
    writer = UploadingShardWriter(tmp_path / "spool", root / "0", 1)
    with pytest.raises(StorageError):
        writer.write(make_items(ranks=(1,))[0].sample())
    assert keys(aws_env, s3_bucket) == [] and list((tmp_path / "spool").iterdir()) == []


def test_a_damaged_shard_is_found_with_its_samples(tmp_path, s3_bucket, aws_env):
    root = ObjectPath(f"s3://{s3_bucket}/out")
    items = make_items(ranks=(4,))
    _write(tmp_path / "spool", root, items)
    whole = (root / "0" / "shard-000001.tar").read_bytes()
    (root / "0" / "shard-000001.tar").write_bytes(whole[:1500])  # cut inside its first member
    cache = ShardScan()
    scan, damaged = scan_remote_done(root, Expected.from_details(details()), cache)
    assert scan.done == {int(it.id) for it in items[:2]} and damaged == [root / "0" / "shard-000001.tar"]
    assert "truncated" in scan.damaged[0]
    assert scan_remote_done(root, Expected(channels=3), cache)[0].done == scan.done  # read once per run


def test_a_prefix_with_objects_of_someone_else_is_refused_and_left_alone(s3_bucket, aws_env):
    s3 = client(aws_env)
    s3.put_object(Bucket=s3_bucket, Key="mine/notes.txt", Body=b"keep me")
    with pytest.raises(UserError, match=r"did not write \(e\.g\. notes\.txt\)"):
        check_remote_ownership(ObjectPath(f"s3://{s3_bucket}/mine"))
    assert keys(aws_env, s3_bucket) == ["mine/notes.txt"]


def test_overwrite_deletes_only_our_objects(tmp_path, s3_bucket, aws_env):
    root = ObjectPath(f"s3://{s3_bucket}/out")
    assert check_remote_ownership(root) is Ownership.NEW
    write_details(root, details())
    _write(tmp_path / "spool", root, make_items(ranks=(3,)))
    assert check_remote_ownership(root) is Ownership.OURS
    client(aws_env).put_object(Bucket=s3_bucket, Key="out-other/keep.tar", Body=b"x")  # beside, not below
    remove_remote_output(root)
    assert keys(aws_env, s3_bucket) == ["out-other/keep.tar"]


def test_the_lock_object_admits_one_run_and_is_taken_over_from_a_dead_one(s3_bucket, aws_env):
    root = ObjectPath(f"s3://{s3_bucket}/out")
    lock = acquire_remote_lock(root)
    assert check_remote_run_lock(root, lock.info.token) is None
    with pytest.raises(ResourceError, match="being written by another run"):
        acquire_remote_lock(root)  # this process is alive: its lock holds
    assert "names another run" in (check_remote_run_lock(root, "other") or "")
    lock.release()
    assert keys(aws_env, s3_bucket) == []
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    for host, taken in ((socket.gethostname(), True), ("another-node", False)):
        record = {"pid": int(dead.stdout), "host": host, "started": "then", "command": "encode", "token": "old"}
        (root / "preencode.lock").write_text(json.dumps(record))
        if taken:
            assert acquire_remote_lock(root).info.token != "old"
        else:
            with pytest.raises(ResourceError, match="another-node"):
                acquire_remote_lock(root)


def test_without_conditional_writes_the_lock_is_checked_then_written(s3_bucket, aws_env, monkeypatch, caplog):
    from botocore.exceptions import ClientError

    real = ObjectPath._s3

    def no_conditions(self, what, method, missing_ok=True, **kwargs):
        if "IfNoneMatch" in kwargs:  # as a server that does not implement them answers
            error = ClientError({"Error": {"Code": "NotImplemented", "Message": "not implemented"}}, "PutObject")
            raise StorageError(f"Cannot {what} {self}: not implemented.") from error
        return real(self, what, method, missing_ok, **kwargs)

    monkeypatch.setattr(ObjectPath, "_s3", no_conditions)
    root = ObjectPath(f"s3://{s3_bucket}/out")
    lock = acquire_remote_lock(root)
    assert "does not support conditional writes" in caplog.text
    with pytest.raises(ResourceError, match="being written by another run"):
        acquire_remote_lock(root)
    lock.release()
    assert keys(aws_env, s3_bucket) == []
