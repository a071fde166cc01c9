"""S3 primitives of the store against moto's real server on 127.0.0.1: one commit per object, aborted uploads,
listing, ranged reads, and bounded retries that end in one line."""

from __future__ import annotations

import hashlib
import os

import pytest
from botocore.exceptions import EndpointConnectionError

from preencode.errors import EXIT_ENVIRONMENT, StorageError, UserError
from preencode.store import objects, s3_client
from preencode.store.objects import ObjectPath, RetryPolicy, retrying, store_path
from tests.s3_server import client, keys, reset_clients

MIB = 2**20
FAST = RetryPolicy(attempts=4, first_delay=0.001, max_delay=0.002)


def test_paths_behave_like_the_part_of_pathlib_the_store_uses():
    root = ObjectPath("s3://bucket/out/")
    assert str(root) == "s3://bucket/out" and str(root / "0" / "a.tar") == "s3://bucket/out/0/a.tar"
    assert (root / "0/a.tar").name == "a.tar" and (root / "0/a.tar").parent == root / "0"
    assert str(ObjectPath("s3://bucket")) == "s3://bucket" and ObjectPath("s3://bucket").name == ""
    assert isinstance(store_path("s3://b/x"), ObjectPath) and not isinstance(store_path("out/x"), ObjectPath)
    assert sorted([root / "b", root / "a"]) == [root / "a", root / "b"]
    with pytest.raises(UserError, match="bucket"):
        ObjectPath("s3:///nobucket")


def test_whole_objects_ranges_and_listings(s3_bucket):
    root = ObjectPath(f"s3://{s3_bucket}/out")
    assert not root.is_dir() and not root.exists()
    (root / "details.json").write_text('{"a": 1}')
    (root / "0" / "x.tar").write_bytes(b"0123456789")
    (root / "1" / "y.tar").write_bytes(b"abc")
    assert root.is_dir() and not root.is_file() and (root / "details.json").is_file()
    assert (root / "details.json").read_text() == '{"a": 1}'
    assert (root / "0/x.tar").read_range(2, 3) == b"234"
    assert (root / "0/x.tar").stat().size == 10 and (root / "nothing").stat() is None
    files, folders = root.list_dir()
    assert [f.path.name for f in files] == ["details.json"] and sorted(folders) == ["0", "1"]
    assert [(str(i.path), i.size) for i in root.list_all()] == [
        (f"s3://{s3_bucket}/out/0/x.tar", 10), (f"s3://{s3_bucket}/out/1/y.tar", 3),
        (f"s3://{s3_bucket}/out/details.json", 8)]
    with (root / "0/x.tar").open_stream(chunk_size=4) as f:
        assert f.read(4) == b"0123" and f.read() == b"456789"
    with pytest.raises(FileNotFoundError):
        (root / "missing.json").read_bytes()
    (root / "1" / "y.tar").unlink()
    (root / "1" / "never-written.tar").unlink(missing_ok=True)
    assert [i.path.name for i in root.list_all()] == ["x.tar", "details.json"]


def test_listing_pages_through_every_page(s3_bucket, monkeypatch):
    monkeypatch.setattr(objects, "LIST_PAGE", 2)
    c = client(os.environ["AWS_ENDPOINT_URL"])
    for i in range(5):
        c.put_object(Bucket=s3_bucket, Key=f"many/{i:05d}", Body=b"")
        c.put_object(Bucket=s3_bucket, Key=f"many/sub{i}/x", Body=b"")
    root = ObjectPath(f"s3://{s3_bucket}/many")
    assert [i.path.name for i in root.list_all()] == [f"{i:05d}" for i in range(5)] + ["x"] * 5
    files, folders = root.list_dir()
    assert len(files) == 5 and folders == [f"sub{i}" for i in range(5)]


def test_small_upload_is_one_put(s3_bucket, tmp_path):
    local = tmp_path / "shard.tar"
    local.write_bytes(os.urandom(1000))
    target = ObjectPath(f"s3://{s3_bucket}/0/shard.tar")
    target.upload(local, on_part=pytest.fail)  # below the threshold: no parts
    assert target.read_bytes() == local.read_bytes()


def test_multipart_upload_is_invisible_until_complete(aws_env, s3_bucket, tmp_path):
    local = tmp_path / "big.tar"
    data = os.urandom(11 * MIB)
    local.write_bytes(data)
    target = ObjectPath(f"s3://{s3_bucket}/out/0/big.tar")
    c = client(aws_env)
    seen = []

    def after_part(number, sent):
        # Mid-upload: the object does not exist for any reader, the upload is pending.
        seen.append((number, sent, keys(aws_env, s3_bucket), len(c.list_multipart_uploads(Bucket=s3_bucket)
                                                                      .get("Uploads", []))))

    target.upload(local, threshold=1, part_size=5 * MIB, on_part=after_part)
    assert [s[:2] for s in seen] == [(1, 5 * MIB), (2, 10 * MIB), (3, 11 * MIB)]
    assert all(s[2] == [] and s[3] == 1 for s in seen)
    assert target.read_bytes() == data
    digests = b"".join(hashlib.md5(data[i:i + 5 * MIB]).digest() for i in range(0, len(data), 5 * MIB))
    assert target.stat().etag == f'"{hashlib.md5(digests).hexdigest()}-3"'
    assert c.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", []) == []


def test_a_failed_multipart_upload_leaves_nothing_and_keeps_the_old_object(aws_env, s3_bucket, tmp_path):
    target = ObjectPath(f"s3://{s3_bucket}/out/0/shard.tar")
    target.write_bytes(b"the committed shard")
    local = tmp_path / "new.tar"
    local.write_bytes(os.urandom(11 * MIB))

    def fail_at_part_two(number, sent):
        if number == 2:
            raise RuntimeError("killed mid-upload")

    with pytest.raises(RuntimeError, match="killed mid-upload"):
        target.upload(local, threshold=1, part_size=5 * MIB, on_part=fail_at_part_two)
    assert target.read_bytes() == b"the committed shard"
    assert keys(aws_env, s3_bucket) == ["out/0/shard.tar"]
    assert client(aws_env).list_multipart_uploads(Bucket=s3_bucket).get("Uploads", []) == []  # aborted


def test_a_completion_whose_answer_was_lost_is_recognised(s3_bucket, tmp_path, monkeypatch):
    """The server completed the upload but the answer never came: the retry finds NoSuchUpload, and the
    object with the expected ETag is the proof that it was committed."""
    local = tmp_path / "big.tar"
    local.write_bytes(os.urandom(6 * MIB))
    target = ObjectPath(f"s3://{s3_bucket}/big.tar", policy=FAST)
    real = objects.s3_filesystem(client_retries=False)
    lost = []

    class LosesOneAnswer:
        def __getattr__(self, name):
            return getattr(real, name)

        def call_s3(self, method, **kwargs):
            answer = real.call_s3(method, **kwargs)
            if method == "complete_multipart_upload" and not lost:
                lost.append(method)
                raise EndpointConnectionError(endpoint_url="http://127.0.0.1")
            return answer

    monkeypatch.setattr(objects, "s3_filesystem", lambda *a, **k: LosesOneAnswer())
    target.upload(local, threshold=1, part_size=5 * MIB)
    assert lost and target.read_bytes() == local.read_bytes()


def test_transient_errors_are_retried_then_succeed(monkeypatch):
    sleeps = []
    monkeypatch.setattr(s3_client.time, "sleep", sleeps.append)
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise EndpointConnectionError(endpoint_url="http://127.0.0.1:1")
        return "ok"

    assert retrying(flaky, "read", "s3://b/k", RetryPolicy(attempts=5, first_delay=0.25, max_delay=4)) == "ok"
    assert len(calls) == 3 and len(sleeps) == 2
    assert 0.125 <= sleeps[0] <= 0.25 and 0.25 <= sleeps[1] <= 0.5  # exponential, with jitter


def test_permanent_errors_are_not_retried():
    calls = []

    def denied():
        calls.append(1)
        raise PermissionError("Access Denied")

    with pytest.raises(StorageError, match="Access denied: cannot write s3://b/k") as info:
        retrying(denied, "write", "s3://b/k", FAST)
    assert len(calls) == 1 and info.value.exit_code == EXIT_ENVIRONMENT
    with pytest.raises(ValueError):  # a bug of ours is not a storage problem: it propagates as it is
        retrying(lambda: int("x"), "read", "s3://b/k", FAST)


def test_a_missing_bucket_is_missing_for_reads_and_an_error_for_writes(aws_env):
    obj = ObjectPath("s3://no-such-bucket-here/x.json")
    with pytest.raises(FileNotFoundError):
        obj.read_bytes()
    with pytest.raises(StorageError, match="no-such-bucket-here"):
        obj.write_bytes(b"{}")


def test_unreachable_endpoint_gives_up_after_the_budget(monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    reset_clients()
    sleeps = []
    monkeypatch.setattr(s3_client.time, "sleep", sleeps.append)
    with pytest.raises(StorageError, match=r"gave up after 5 attempts .*endpoint http://127.0.0.1:1"):
        ObjectPath("s3://bucket/out/details.json").read_bytes()
    policy = s3_client.DEFAULT_RETRY
    assert len(sleeps) == policy.attempts - 1
    assert sum(sleeps) <= sum(min(policy.max_delay, policy.first_delay * 2**i) for i in range(policy.attempts - 1))
