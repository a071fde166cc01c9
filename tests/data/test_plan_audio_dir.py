"""Scanning audio folders: extensions, hidden files, sorted order, symlinks and loops."""

from __future__ import annotations

import json
import logging
import os

import pytest

from preencode.data import build_plan, parse_dataset_config
from preencode.errors import DatasetError
from tests.audio_files import tone, write_audio


def _config(*paths, **top):
    return parse_dataset_config({"dataset_type": "audio_dir",
                                 "datasets": [{"id": f"d{i}", "path": str(p)} for i, p in enumerate(paths)],
                                 **top})


def _touch_audio(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_audio(path, tone(0.05, 8000), 8000, fmt="wav")


def test_every_extension_case_insensitive_hidden_skipped_sorted(tmp_path):
    for name in ["b/z.WAV", "b/a.Flac", "a.mp3", "c.m4a", "d.ogg", "e.opus", "f.aif", "g.AIFF",
                 ".hidden.wav", "notes.txt", "x.wav.bak"]:
        _touch_audio(tmp_path / name)
    plan = build_plan(_config(tmp_path))
    assert [i.relpath for i in plan.items] == ["a.mp3", os.path.join("b", "a.Flac"), os.path.join("b", "z.WAV"),
                                               "c.m4a", "d.ogg", "e.opus", "f.aif", "g.AIFF"]
    assert [i.index for i in plan.items] == list(range(8))
    assert plan.failures == []
    first = plan.items[0]
    assert first.fingerprint.size == os.path.getsize(tmp_path / "a.mp3") and first.fingerprint.mtime_ns > 0
    assert first.id == "0000000000000"


def test_indices_run_across_datasets_in_config_order(tmp_path):
    for name in ["one/b.wav", "one/a.wav", "two/a.wav"]:
        _touch_audio(tmp_path / name)
    plan = build_plan(_config(tmp_path / "two", tmp_path / "one"))
    assert [(i.index, i.dataset_id, i.relpath) for i in plan.items] == [
        (0, "d0", "a.wav"), (1, "d1", "a.wav"), (2, "d1", "b.wav")]


def test_symlinked_folder_followed_and_loops_reported_without_hanging(tmp_path):
    data = tmp_path / "data"
    _touch_audio(data / "real" / "x.wav")
    _touch_audio(tmp_path / "elsewhere" / "y.wav")
    os.symlink(tmp_path / "elsewhere", data / "linked")
    os.symlink(data, data / "real" / "back_to_root")  # a loop
    os.symlink(data / "self", data / "self")  # a link to itself
    plan = build_plan(_config(data))
    assert [i.relpath for i in plan.items] == [os.path.join("linked", "y.wav"), os.path.join("real", "x.wav")]
    reasons = {os.path.basename(f.path): f.reason for f in plan.failures}
    assert set(reasons) == {"back_to_root", "self"}
    assert all("symlink loop" in r for r in reasons.values())
    assert all(f.stage == "scan" for f in plan.failures)


def test_second_link_to_a_scanned_folder_gives_no_duplicates(tmp_path, caplog):
    _touch_audio(tmp_path / "a" / "x.wav")
    os.symlink(tmp_path / "a", tmp_path / "b")
    with caplog.at_level(logging.WARNING):
        plan = build_plan(_config(tmp_path))
    assert [i.relpath for i in plan.items] == [os.path.join("a", "x.wav")]
    assert "already scanned" in caplog.text


def test_broken_symlink_with_audio_name_is_a_failure(tmp_path):
    _touch_audio(tmp_path / "good.wav")
    os.symlink(tmp_path / "missing.wav", tmp_path / "dangling.wav")
    plan = build_plan(_config(tmp_path))
    assert [i.relpath for i in plan.items] == ["good.wav"]
    assert [(os.path.basename(f.path), f.stage) for f in plan.failures] == [("dangling.wav", "scan")]


def test_pipe_named_like_audio_is_reported(tmp_path):
    _touch_audio(tmp_path / "good.wav")
    os.mkfifo(tmp_path / "pipe.wav")
    plan = build_plan(_config(tmp_path))
    assert [i.relpath for i in plan.items] == ["good.wav"]
    assert "not a regular file" in plan.failures[0].reason


def test_missing_folder_and_empty_dataset_are_user_errors(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        build_plan(_config(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="No audio inputs"):
        build_plan(_config(tmp_path / "empty"))


def test_pre_encoded_config_is_refused(tmp_path):
    config = parse_dataset_config({"dataset_type": "pre_encoded", "datasets": [{"id": "x", "path": str(tmp_path)}]})
    with pytest.raises(DatasetError, match="pre_encoded"):
        build_plan(config)


def test_drop_last_true_is_warned_about_and_ignored(tmp_path, caplog):
    _touch_audio(tmp_path / "a.wav")
    with caplog.at_level(logging.WARNING):
        plan = build_plan(_config(tmp_path, drop_last=True))
    assert len(plan) == 1 and "drop_last is ignored" in caplog.text


def test_new_options_parse(tmp_path):
    config = _config(tmp_path, drop_silent=True, augment_phase=True)
    assert config.drop_silent and config.augment_phase
    assert not _config(tmp_path).drop_silent
    json.dumps(config.raw)
