"""Encoding into S3 (moto's real server on 127.0.0.1): two processes, a run killed and resumed giving what an
uninterrupted local run gives; loose files refused. The store's parts: tests/store/test_s3_output.py."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from preencode.cli import main
from preencode.store.objects import ObjectPath
from preencode.store.reader import iter_records, open_tree
from tests.encode_setup import dataset_config, encode_args, write_clips
from tests.s3_server import keys

ROOT = Path(__file__).resolve().parents[3]


def _run(argv: list[str], spool: Path | None = None, **kwargs) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    if spool is not None:
        spool.mkdir(exist_ok=True)
        env["TMPDIR"] = str(spool)
    return subprocess.Popen([sys.executable, "-m", "preencode", *argv], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)


def _finish(proc: subprocess.Popen, timeout: float = 300) -> str:
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out
    return out


def _contents(root: str | Path) -> dict[str, tuple[bytes, bytes]]:
    """{id: (latent bytes, metadata bytes)} of a tree, each id once."""
    found: dict[str, tuple[bytes, bytes]] = {}
    for record in iter_records(open_tree(root), on_shard_error=pytest.fail):
        assert record.id not in found, f"duplicate id {record.id}"
        found[record.id] = (record.read_bytes(".npy"), record.read_bytes(".json"))
    return found


def test_two_processes_killed_and_resumed_write_what_one_local_run_writes(model_files, tmp_path, s3_bucket,
                                                                          aws_env, capsys):
    folder = tmp_path / "audio"
    clips = 40  # 20 shards: room for the kill to land mid-run even when the listing below is slow
    write_clips(folder, [200 + 37 * (i % 16) for i in range(clips)])
    cfg = dataset_config(tmp_path, folder)
    url = f"s3://{s3_bucket}/runs/enc"
    common = ("--output-format", "wds", "--shard-size", "2", "--posterior", "mean", "--batch-size", "1")
    args = encode_args(model_files, cfg, url, *common, "--devices", "2", "--strategy", "ddp")
    spool = tmp_path / "tmp"
    proc = _run(args, spool, start_new_session=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and sum(k.endswith(".tar") for k in keys(aws_env, s3_bucket)) < 2:
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    out, _ = proc.communicate()
    shards = [k for k in keys(aws_env, s3_bucket) if k.endswith(".tar")]
    assert 2 <= len(shards) < clips // 2, out
    assert "runs/enc/preencode.lock" in keys(aws_env, s3_bucket)  # the killed run's lock, taken over below
    left = sorted(spool.iterdir())  # the killed processes' spools: at most their open shards
    out = _finish(_run(args, spool))
    assert "Taking over the lock" in out and "skipped" in out
    assert sorted(spool.iterdir()) == left  # a run that ends removes its spool
    local = tmp_path / "local"
    _finish(_run(encode_args(model_files, cfg, local, *common)))
    remote, here = _contents(url), _contents(local)
    assert sorted(remote) == sorted(here) and len(here) == clips
    assert remote == here  # same ids, same bytes
    names = keys(aws_env, s3_bucket, "runs/enc/")
    assert {n.split("/", 2)[2] for n in names if "/" not in n.split("/", 2)[2]} == {
        "details.json", "manifest.jsonl", "failures.jsonl", "shards.txt"}  # the lock is gone
    assert {n.split("/")[2] for n in names if n.endswith(".tar")} == {"0", "1"}  # each rank its own prefix
    listed = ObjectPath(f"{url}/shards.txt").read_text().split()
    assert sorted(listed) == sorted(n.split("/", 2)[2] for n in names if n.endswith(".tar"))
    capsys.readouterr()
    assert main(["verify", url]) == 0
    assert capsys.readouterr().out.startswith(f"OK: {clips} latents in {url} verified")
    assert f"{clips} skipped" in _finish(_run(args[:args.index("--devices")]))  # done: nothing encoded again


def test_loose_files_in_s3_are_refused_with_the_reason(model_files, tmp_path, s3_bucket, capsys):
    write_clips(tmp_path / "audio", [300])
    args = encode_args(model_files, dataset_config(tmp_path, tmp_path / "audio"), f"s3://{s3_bucket}/x")
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "needs --output-format wds" in err and "one request per file" in err
    assert keys(os.environ["AWS_ENDPOINT_URL"], s3_bucket) == []


def test_an_upload_that_fails_in_the_writer_thread_reaches_the_run():
    from preencode.encode.engine.sink import BackgroundWriter
    from preencode.errors import StorageError

    class Unreachable:
        def write(self, sample):
            raise StorageError("Cannot write s3://b/out/0/shard-000000.tar: gave up after 5 attempts.")

        def close(self):
            raise AssertionError("a writer that failed is not closed (its open shard is not committed)")

    background = BackgroundWriter(Unreachable(), max_pending=1)
    background.put(object())
    with pytest.raises(StorageError, match="gave up"):
        for _ in range(3):  # the thread's error comes back at the next put, or at close
            background.put(object())
        background.close()
