"""``verify`` and ``inspect`` of an output tree in S3 (moto's real server on 127.0.0.1): the same answers as for
the local tree, faults reported with their s3:// paths, an unreachable endpoint in one line."""

from __future__ import annotations

import json

import numpy as np
import pytest

from preencode.cli import main
from preencode.store import s3_client
from preencode.store.objects import ObjectPath
from preencode.store.reader import ReadError, iter_records, open_tree, read_shard
from preencode.tools.summary import summarise
from preencode.tools.verify import verify_tree
from tests.s3_server import client, reset_clients, upload_tree
from tests.store.trees import make_items, write_tree


@pytest.fixture
def trees(tmp_path, s3_bucket):
    """(local tree, its copy in S3): two ranks, one shard each, with std sidecars and logs."""
    local = write_tree(tmp_path / "out", make_items(with_std=True), shards=True,
                       failures=[{"path": "/a.wav", "stage": "decode", "reason": "bad"}], rejected=1)
    return local, upload_tree(local, f"s3://{s3_bucket}/runs/out")


def test_verify_of_an_encode_run_uploaded_to_s3(wds_output, s3_bucket, capsys):
    remote = upload_tree(wds_output, f"s3://{s3_bucket}/encoded")
    assert main(["verify", str(remote)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out == [f"OK: 7 latents in {remote} verified (3 tar shards), no problems."]


def test_the_s3_tree_reads_like_the_local_one(trees):
    local, remote = trees
    tree = open_tree(str(remote))
    assert tree.ranks == ["0", "1"] and [str(p) for _, p in tree.shards] == [
        f"{remote}/0/shard-000000.tar", f"{remote}/1/shard-000000.tar"]
    assert tree.details.latent.latent_dim == 4 and not tree.temporaries and not tree.loose
    streamed = {r.id: r for r in iter_records(tree, on_shard_error=pytest.fail)}
    expected = {r.id: r for r in iter_records(open_tree(local), on_shard_error=pytest.fail)}
    assert sorted(streamed) == sorted(expected)
    for key, record in streamed.items():
        np.testing.assert_array_equal(record.load_latent(), expected[key].load_latent())
        np.testing.assert_array_equal(record.load_std(), expected[key].load_std())
        assert record.load_meta() == expected[key].load_meta()
    # One member by one ranged GET: the parts found by listing a shard, without their bytes.
    first = read_shard(remote / "0" / "shard-000000.tar", "0")[0]
    assert all(part.data is None and part.path.startswith("s3://") for part in first.parts.values())
    np.testing.assert_array_equal(first.load_latent(), expected[first.id].load_latent())


def test_inspect_gives_the_same_numbers(trees, capsys):
    local, remote = trees
    a, b = summarise(local).as_dict(), summarise(str(remote)).as_dict()
    assert b.pop("root") == str(remote) and a.pop("root") == str(local)
    assert a == b and b["failures"]["count"] == 1 and b["rejected"] == 1
    assert main(["inspect", str(remote), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["latents"] == 5


def test_faults_in_the_bucket_are_reported_with_their_urls(trees, aws_env, s3_bucket):
    _, remote = trees
    c = client(aws_env)
    (remote / "0" / "0000000000009.npy").write_bytes(b"a loose latent")
    (remote / "1" / ".shard-000000.tar.preencode-7.tmp").write_bytes(b"x")
    shard = remote / "1" / "shard-000000.tar"
    shard.write_bytes(shard.read_bytes()[:1500])  # damaged after the commit
    result = verify_tree(str(remote))
    assert not result.ok
    text = "\n".join(result.problems)
    assert f"{remote}/0/0000000000009.npy: a loose file in an S3 output" in text
    assert f"{remote}/1/.shard-000000.tar.preencode-7.tmp: leftover temporary" in text
    assert f"{shard}: not a readable tar shard" in text
    assert c.head_object(Bucket=s3_bucket, Key="runs/out/details.json")["ContentLength"] > 0


def test_a_missing_output_is_a_usage_error(aws_env, s3_bucket, capsys):
    assert main(["verify", f"s3://{s3_bucket}/nothing/here"]) == 2
    assert f"Output folder not found: s3://{s3_bucket}/nothing/here." in capsys.readouterr().err


def test_a_shard_that_ends_early_is_a_read_error(s3_bucket):
    obj = ObjectPath(f"s3://{s3_bucket}/bad.tar")
    obj.write_bytes(b"\x01" * 700)
    with pytest.raises(ReadError, match="not a readable tar shard"):
        read_shard(obj)


def test_verify_of_an_unreachable_endpoint_is_one_line_and_exit_1(monkeypatch, capsys):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    reset_clients()
    sleeps = []
    monkeypatch.setattr(s3_client.time, "sleep", sleeps.append)  # the budget is counted, not waited for
    assert main(["verify", "s3://bucket/out"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("preencode verify: error: Cannot "), err
    assert "gave up after 5 attempts" in err[0] and "127.0.0.1:1" in err[0]
    assert len(sleeps) == s3_client.DEFAULT_RETRY.attempts - 1
