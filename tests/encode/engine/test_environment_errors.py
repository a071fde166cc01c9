"""Failures of the environment are one line and exit 1 (no traceback), and leave nothing half-written.

Old code: each of these ended in a traceback (OSError from the writer thread, PermissionError, botocore's
EndpointConnectionError / ProfileNotFound, ModuleNotFoundError for torch_xla); S3 access denied exited 2.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import subprocess

import pytest

from preencode.cli import main
from tests.encode_setup import encode_args, read_output
from tests.helpers import write_json


def _one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 1, err
    return lines[0]


@contextlib.contextmanager
def _mounted(where, options: str):
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode(errors='replace').strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=False)


def test_disk_full_is_one_line_leaves_no_temporary_and_a_rerun_completes(model_files, clips, tmp_path, capsys):
    clean = tmp_path / "clean"
    assert main(encode_args(model_files, clips[1], clean)) == 0
    with _mounted(tmp_path / "disk", "size=160k") as disk:
        filler = disk / "filler"
        filler.write_bytes(b"\0" * (160 - 48) * 1024)  # room for details.json, the manifest and a few samples
        out = disk / "out"
        args = encode_args(model_files, clips[1], out)
        assert main(args) == 1
        assert "No space left on the device of" in _one_line(capsys)
        assert [p.name for p in out.rglob("*") if p.name.startswith(".") or p.name.endswith(".tmp")] == []
        assert 0 < len(read_output(out)) < 7  # what was written is kept
        filler.unlink()
        assert main(args) == 0
        ours, reference = read_output(out), read_output(clean)
        assert ours.keys() == reference.keys()
        for key, (latent, meta) in ours.items():
            assert (latent == reference[key][0]).all() and meta == reference[key][1]


class _Disk:
    """Every byte preencode writes goes through ``AtomicFile.write``: this one holds ``free`` bytes, then fails
    as a full disk does (``OSError(ENOSPC)`` without a file name)."""

    def __init__(self, free: float) -> None:
        self.free, self.used = free, 0

    def patch(self, monkeypatch) -> None:
        from preencode.store.atomic import AtomicFile

        write = AtomicFile.write

        def limited(file: AtomicFile, data: bytes) -> int:
            if len(data) > self.free - self.used:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            self.used += len(data)
            return write(file, data)

        monkeypatch.setattr(AtomicFile, "write", limited)


def test_disk_full_simulated_is_one_line_leaves_no_temporary_and_a_rerun_completes(model_files, clips, tmp_path,
                                                                                    capsys, monkeypatch):
    """The tmpfs test above without mounting (which needs root): the same failure raised by the writer."""
    clean = tmp_path / "clean"
    measure = _Disk(float("inf"))
    with monkeypatch.context() as patched:
        measure.patch(patched)
        assert main(encode_args(model_files, clips[1], clean)) == 0
    out = tmp_path / "out"
    args = encode_args(model_files, clips[1], out)
    disk = _Disk(measure.used // 2)
    with monkeypatch.context() as patched:
        disk.patch(patched)
        assert main(args) == 1
    assert f"No space left on the device of {out}." in _one_line(capsys)
    assert [p.name for p in out.rglob("*") if p.name.startswith(".") or p.name.endswith(".tmp")] == []
    assert 0 < len(read_output(out)) < 7  # what was written is kept
    assert main(args) == 0  # space freed
    ours, reference = read_output(out), read_output(clean)
    assert ours.keys() == reference.keys()
    for key, (latent, meta) in ours.items():
        assert (latent == reference[key][0]).all() and meta == reference[key][1]


def test_unwritable_output_is_one_line(model_files, clips, tmp_path, capsys):
    if os.geteuid() == 0:  # root writes through permissions: use a read-only filesystem
        context = _mounted(tmp_path / "locked", "ro,size=64k")
    else:
        (tmp_path / "locked").mkdir()
        (tmp_path / "locked").chmod(0o555)
        context = contextlib.nullcontext(tmp_path / "locked")
    with context as locked:
        assert main(encode_args(model_files, clips[1], locked / "out")) == 1
        line = _one_line(capsys)
        assert "read-only filesystem" in line or "Permission denied" in line


def test_unknown_accelerator_is_one_line(model_files, clips, tmp_path, capsys):
    assert main(encode_args(model_files, clips[1], tmp_path / "out", "--accelerator", "tpu")) == 2
    assert "--accelerator tpu" in _one_line(capsys)
    assert not (tmp_path / "out").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def s3_env(monkeypatch, tmp_path):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    (tmp_path / "aws_config").write_text("[default]\nregion = us-east-1\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws_config"))
    for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    import fsspec
    fsspec.filesystem("s3").clear_instance_cache()
    yield monkeypatch
    fsspec.filesystem("s3").clear_instance_cache()


def _s3_config(tmp_path, **entry):
    return write_json(tmp_path / "s3.json", {"dataset_type": "s3", "datasets": [
        {"id": "remote", "s3_path": "s3://audio/train/", **entry}]})


def test_unreachable_s3_endpoint_is_one_line_after_bounded_retries(model_files, s3_env, tmp_path, capsys):
    s3_env.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    assert main(encode_args(model_files, _s3_config(tmp_path), tmp_path / "out")) == 1
    assert "the S3 endpoint http://127.0.0.1:1 cannot be reached" in _one_line(capsys)
    assert not (tmp_path / "out").exists()


def test_unknown_aws_profile_is_one_line(model_files, s3_env, tmp_path, capsys):
    s3_env.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    assert main(encode_args(model_files, _s3_config(tmp_path, profile="nosuch"), tmp_path / "out")) == 1
    assert "the AWS profile 'nosuch' is not in this machine's AWS config" in _one_line(capsys)


def test_s3_access_denied_is_one_line(model_files, s3_env, tmp_path, capsys):
    from moto import settings
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        s3_env.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
        s3_env.setattr(settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)  # moto checks credentials: ours are unknown
        assert main(encode_args(model_files, _s3_config(tmp_path), tmp_path / "out")) == 1
        assert "access denied" in _one_line(capsys)
    finally:
        server.stop()
