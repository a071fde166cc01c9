"""The output folder: never someone else's files, never a dangerous place, one run at a time.

What each test caught on the code before issue 11 is said in its docstring.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from preencode.cli import main
from preencode.store.lock import LockInfo
from preencode.store.names import LOCK
from tests.encode_setup import dataset_config, encode_args, read_output, write_clips
from tests.helpers import write_json

ROOT = Path(__file__).resolve().parents[3]
USER_FILES = {".env": "SECRET=1", "todo.tmp": "todo", ".git/HEAD": "ref: refs/heads/main", "2019/notes.tmp": "n",
              "2019/song.wav": "not really audio", "0/.hidden": "h", "0/cover.jpg": "j", "notes.txt": "x"}


def _write_user_files(folder: Path) -> None:
    for rel, text in USER_FILES.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(text)


def _intact(folder: Path) -> bool:
    return all((folder / rel).read_text() == text for rel, text in USER_FILES.items())


def _error(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize("extra", [[], ["--overwrite"]])
def test_a_folder_of_someone_else_is_refused_and_left_intact(model_files, clips, tmp_path, capsys, extra):
    """Old code: .env, todo.tmp and 2019/*.tmp deleted (and 2019/ rmtree'd with --overwrite), then encoded."""
    out = tmp_path / "project"
    _write_user_files(out)
    assert main(encode_args(model_files, clips[1], out, *extra)) == 2
    assert "holds files that preencode did not write" in _error(capsys)
    assert _intact(out) and sorted(p.name for p in out.iterdir()) == [".env", ".git", "0", "2019", "notes.txt",
                                                                       "todo.tmp"]


def test_user_files_added_to_our_output_survive_resume_and_overwrite(model_files, clips, tmp_path):
    """Old code: the dot-files and *.tmp were deleted as leftovers, and --overwrite rmtree'd 2019/ and 0/."""
    out = tmp_path / "out"
    assert main(encode_args(model_files, clips[1], out, "--limit-batches", "2")) == 0
    _write_user_files(out)
    assert main(encode_args(model_files, clips[1], out)) == 0
    assert _intact(out) and len(read_output(out)) == 7
    assert main(encode_args(model_files, clips[1], out, "--overwrite", "--seed", "3")) == 0
    assert _intact(out) and len(read_output(out)) == 7
    assert not (out / LOCK).exists()


@pytest.mark.parametrize("where", [".", "..", "~", "/", "audio", "audio/sub/out", "tmp"])
def test_dangerous_output_paths_are_refused(model_files, clips, tmp_path, monkeypatch, capsys, where):
    """Old code: `--output-path .` deleted the project's dot-files and *.tmp, then crashed on .git."""
    project = tmp_path / "project"
    _write_user_files(project)
    monkeypatch.chdir(project)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    (tmp_path / "tmp").symlink_to(project)  # a symlink to the current folder is the current folder
    given = {"~": "~", "audio": str(clips[0]), "audio/sub/out": str(clips[0] / "sub" / "out"),
             "tmp": str(tmp_path / "tmp")}.get(where, where)
    assert main(encode_args(model_files, clips[1], Path(given))) == 2
    line = _error(capsys)
    assert "Choose a new folder" in line
    if where.startswith("audio"):
        assert "scanned recursively" in line
    assert _intact(project) and not (clips[0] / "sub").exists()


def test_output_under_a_file_is_one_line(model_files, clips, tmp_path, capsys):
    """Old code: a NotADirectoryError traceback from mkdir."""
    (tmp_path / "file.txt").write_text("x")
    assert main(encode_args(model_files, clips[1], tmp_path / "file.txt" / "out")) == 2
    assert "which is a file" in _error(capsys)


def test_missing_details_is_refused_with_the_fix(model_files, clips, tmp_path, capsys):
    """Old code: without details.json every check was off; a run on other settings 'completed' as a mix."""
    out = tmp_path / "out"
    assert main(encode_args(model_files, clips[1], out, "--limit-batches", "2")) == 0
    (out / "details.json").unlink()
    for extra in ([], ["--overwrite"], ["--seed", "9"]):
        assert main(encode_args(model_files, clips[1], out, *extra)) == 2
        assert "holds preencode output but no details.json" in _error(capsys)
    assert len(read_output(out)) == 2


def test_the_same_folder_twice_in_the_dataset_is_refused(model_files, clips, tmp_path, capsys):
    """Old code: `path` and `path/` encoded every file twice, under two ids."""
    folder = clips[0]
    cfg = write_json(tmp_path / "twice.json", {"dataset_type": "audio_dir", "datasets": [
        {"id": "a", "path": str(folder)}, {"id": "b", "path": f"{folder}/"}]})
    assert main(encode_args(model_files, cfg, tmp_path / "out")) == 2
    assert "are the same folder" in _error(capsys)
    assert not (tmp_path / "out").exists()


def test_lock_and_details_come_first_and_a_failed_run_takes_them_back(model_files, clips, tmp_path, monkeypatch,
                                                                      capsys):
    """The output is marked ours (details.json) and locked before the model is even loaded; a run that then fails
    before encoding anything leaves no folder behind. Old code: details.json appeared only once Lightning ran,
    ~9 s in, so a second run could not tell the folder was taken."""
    from preencode.errors import CheckpointError
    from preencode.models import checkpoint

    out = tmp_path / "out"
    seen = {}

    def fail_to_load(*args, **kwargs):
        seen["files"] = sorted(p.name for p in out.iterdir()) if out.exists() else []
        seen["details"] = json.loads((out / "details.json").read_text())["sample_size"] if seen["files"] else None
        raise CheckpointError("simulated: the checkpoint cannot be loaded.")

    monkeypatch.setattr(checkpoint, "load_autoencoder", fail_to_load)
    assert main(encode_args(model_files, clips[1], out)) == 2
    assert "simulated" in _error(capsys)
    assert seen == {"files": ["details.json", LOCK], "details": 256}
    assert not out.exists()


def test_a_stale_lock_is_taken_over(model_files, clips, tmp_path, caplog):
    out = tmp_path / "out"
    out.mkdir()
    stale = LockInfo(pid=999_999, host="vm", started="2026-01-01T00:00:00+00:00", command="killed", token="t")
    (out / LOCK).write_text(json.dumps(stale.__dict__))
    assert main(encode_args(model_files, clips[1], out)) == 0
    assert "pid 999999" in caplog.text and len(read_output(out)) == 7 and not (out / LOCK).exists()


def _start(argv: list[str]) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-m", "preencode", *argv], env=env, cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)


def _wait_for_lock(out: Path, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            return json.loads((out / LOCK).read_text())
        except (FileNotFoundError, ValueError):  # not there yet, or being written
            time.sleep(0.02)
    raise AssertionError(f"no lock in {out} after {timeout} s")


def test_a_second_run_is_refused_at_once_and_the_first_completes_as_a_clean_run(model_files, tmp_path, capsys):
    """Old code: the second run (other seed, or --overwrite) ran too: a mix of latents, or a crash of the first."""
    folder = tmp_path / "audio"
    write_clips(folder, [300 + 37 * i for i in range(40)])
    cfg = dataset_config(tmp_path, folder)
    out, clean = tmp_path / "out", tmp_path / "clean"
    first = _start(encode_args(model_files, cfg, out, "--batch-size", "1"))
    try:
        holder = _wait_for_lock(out)
        assert holder["pid"] == first.pid
        for extra in ([], ["--seed", "5"], ["--overwrite"]):
            assert main(encode_args(model_files, cfg, out, "--batch-size", "1", *extra)) == 1
            line = _error(capsys)
            assert f"being written by another run (pid {first.pid} on {holder['host']}, started " in line
        output, _ = first.communicate(timeout=240)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    assert first.returncode == 0, output
    assert main(encode_args(model_files, cfg, clean, "--batch-size", "1")) == 0
    ours, reference = read_output(out), read_output(clean)
    assert ours.keys() == reference.keys() and len(ours) == 40
    for key in ours:
        np.testing.assert_array_equal(ours[key][0], reference[key][0])
        assert ours[key][1] == reference[key][1]
