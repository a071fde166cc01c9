"""Only what preencode wrote is ever deleted: whose folder it is, leftovers, --overwrite.

On the code before issue 11, clean_leftovers removed every dot-file and ``*.tmp`` of the output root and of
all-digit folders (a project's ``.env``, ``todo.tmp``; crashing on ``.git``), and remove_output removed
all-digit folders with rmtree (a ``2019/`` folder of audio).
"""

from __future__ import annotations

import pytest

from preencode.errors import UserError
from preencode.store.layout import clean_leftovers, remove_output
from preencode.store.names import LOCK, is_own_rank_file, is_own_root_file, temp_name
from preencode.store.ownership import Ownership, check_ownership
from tests.store.trees import make_items, write_tree


def _user_files(root):
    """Files a user keeps in a folder: hidden files, *.tmp, a git folder, digit-named folders of audio."""
    files = {".env": "SECRET=1", "todo.tmp": "todo", "notes.txt": "notes", ".git/HEAD": "ref", "2019/a.tmp": "x",
             "2019/song.flac": "audio", "0/.hidden": "h", "0/mine.tmp": "m", "0/cover.jpg": "j",
             "0/0000000000001.txt": "same key as a sample, not our suffix", "7/take1.wav": "audio"}
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return files


def _assert_intact(root, files):
    for rel, text in files.items():
        assert (root / rel).read_text() == text, rel


def test_names_of_ours():
    assert is_own_rank_file("0000000000012.npy") and is_own_rank_file("0000000000012.std.npz")
    assert is_own_rank_file(temp_name("0000000000012.json")) and is_own_rank_file("shard-0000000000000.tar")
    assert is_own_rank_file(".0000000000012.npy.tmp")  # an earlier version's temporary
    for name in ("12.npy", "0000000000012.txt", "0000000000012.std.npy", ".hidden", "mine.tmp", "a.npy",
                 ".x.preencode-1.tmp", ".notes.tmp", ".0000000000012.npy.other-1.tmp"):
        assert not is_own_rank_file(name), name
    assert is_own_root_file("details.json") and is_own_root_file(LOCK) and is_own_root_file(temp_name("manifest.jsonl"))
    for name in (".env", "todo.tmp", "details.json.bak", temp_name("notes.txt"), "0000000000012.npy"):
        assert not is_own_root_file(name), name


def test_a_folder_with_files_of_someone_else_is_refused(tmp_path):
    assert check_ownership(tmp_path / "missing") is Ownership.NEW
    assert check_ownership(tmp_path) is Ownership.NEW  # empty
    (tmp_path / LOCK).write_text("")
    (tmp_path / temp_name("details.json")).write_text("{")
    assert check_ownership(tmp_path) is Ownership.NEW  # a run killed before its details.json
    (tmp_path / ".env").write_text("x")
    with pytest.raises(UserError, match=r"holds files that preencode did not write \(e\.g\. \.env\); choose an empty"):
        check_ownership(tmp_path)


def test_our_files_without_details_are_refused_with_the_fix(tmp_path):
    root = write_tree(tmp_path / "out", make_items())
    (root / "details.json").unlink()
    with pytest.raises(UserError, match=r"holds preencode output but no details\.json.*Restore"):
        check_ownership(root)


def test_reference_output_and_unreadable_details_are_not_ours(tmp_path):
    root = write_tree(tmp_path / "ref", make_items(), details_json={"model_config": "vae.json"})
    with pytest.raises(UserError, match="output of another tool"):
        check_ownership(root)
    (root / "details.json").write_text("{")
    with pytest.raises(UserError, match="cannot tell whether it wrote"):
        check_ownership(root)


def test_leftovers_and_overwrite_remove_only_our_names(tmp_path):
    items = make_items(ranks=(3, 2))
    root = write_tree(tmp_path / "out", items, shards=False)
    files = _user_files(root)
    assert check_ownership(root) is Ownership.OURS  # our details.json: user files inside stay theirs
    (root / "0" / temp_name("0000000000005.npy")).write_text("partial")
    (root / temp_name("failures.jsonl")).write_text("partial")
    (root / "1" / "0000000000099.json").write_text("{}")  # metadata whose latent was never committed
    assert clean_leftovers(root) == 3
    _assert_intact(root, files)
    assert len(list((root / "0").glob("*.npy"))) == 3
    remove_output(root)
    _assert_intact(root, files)
    assert not (root / "details.json").exists() and not (root / "1").exists()  # emptied, so removed
    assert sorted(p.name for p in (root / "0").iterdir()) == [".hidden", "0000000000001.txt", "cover.jpg", "mine.tmp"]


def test_overwrite_removes_our_shards_and_keeps_the_lock(tmp_path):
    root = write_tree(tmp_path / "out", make_items(), shards=True)
    (root / LOCK).write_text("held by this run")
    remove_output(root)
    assert sorted(p.name for p in root.iterdir()) == [LOCK]
