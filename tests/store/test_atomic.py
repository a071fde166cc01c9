"""atomic_write: temporary name, fsync of the file, rename, fsync of the folder; nothing half-written."""

import os
import stat

import pytest

from preencode.store import atomic
from preencode.store.atomic import AtomicFile, atomic_write, commit_in_order
from preencode.store.names import temp_target


def test_writes_bytes_text_and_chunks_and_leaves_no_temporary(tmp_path):
    atomic_write(tmp_path / "a.bin", b"\x00\x01")
    atomic_write(tmp_path / "b.txt", "é\n")
    atomic_write(tmp_path / "c.bin", (bytes([i]) for i in range(3)))
    assert (tmp_path / "a.bin").read_bytes() == b"\x00\x01"
    assert (tmp_path / "b.txt").read_bytes() == "é\n".encode()
    assert (tmp_path / "c.bin").read_bytes() == b"\x00\x01\x02"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin", "b.txt", "c.bin"]


def test_a_failure_mid_write_keeps_the_old_file_and_removes_the_temporary(tmp_path):
    path = tmp_path / "details.json"
    atomic_write(path, b"old")

    def payload():
        yield b"new, half"
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        atomic_write(path, payload())
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["details.json"]


def test_file_is_fsynced_before_the_rename_and_the_folder_after(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append("fsync dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "fsync file")
        real_fsync(fd)

    def replace(src, dst):
        assert temp_target(os.path.basename(src)) == os.path.basename(dst)  # our temporary name, same folder
        events.append("rename")
        real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "fsync", fsync)
    monkeypatch.setattr(atomic.os, "replace", replace)
    atomic_write(tmp_path / "x", b"1")
    assert events == ["fsync file", "rename", "fsync dir"]


def test_a_group_is_complete_before_its_first_rename_and_renamed_in_order(tmp_path, monkeypatch):
    seen = []
    real_replace = os.replace

    def replace(src, dst):
        # when the first file appears, every file of the group is already complete under its temporary name
        seen.append((os.path.basename(dst), sorted(p.name for p in tmp_path.iterdir())))
        real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "replace", replace)
    files = [AtomicFile(tmp_path / name) for name in ("a.json", "a.npy")]
    for f in files:
        f.write(b"data")
    commit_in_order(files)
    assert [name for name, _ in seen] == ["a.json", "a.npy"]  # the last one is the commit marker
    assert seen[0][1] == sorted(f.tmp.name for f in files)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "a.npy"]


def test_a_failing_rename_discards_what_is_not_yet_in_place(tmp_path, monkeypatch):
    real_replace = os.replace

    def replace(src, dst):
        if str(dst).endswith(".npy"):
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "replace", replace)
    files = [AtomicFile(tmp_path / name) for name in ("a.json", "a.npy")]
    with pytest.raises(OSError):
        commit_in_order(files)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]  # an orphan the next run removes


def test_a_full_disk_leaves_no_temporary(tmp_path, monkeypatch):
    atomic_write(tmp_path / "log.jsonl", b"old\n")

    def fsync(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", fsync)
    with pytest.raises(OSError, match="No space left"):
        atomic_write(tmp_path / "log.jsonl", b"new\n")
    assert [p.name for p in tmp_path.iterdir()] == ["log.jsonl"]
    assert (tmp_path / "log.jsonl").read_bytes() == b"old\n"
