"""The same input never twice: dataset entries naming the same or overlapping folders are refused.

Before issue 11, ``path`` and ``path/`` in one config encoded every file twice, under two ids.
"""

from __future__ import annotations

import pytest

from preencode.data.config import parse_dataset_config
from preencode.data.input_roots import check_distinct_inputs, input_roots
from preencode.errors import DatasetError


def _config(*entries: dict, kind: str = "audio_dir"):
    return parse_dataset_config({"dataset_type": kind,
                                 "datasets": [{"id": f"d{i}", **e} for i, e in enumerate(entries)]})


def test_the_same_folder_twice_is_refused_with_both_paths(tmp_path):
    (tmp_path / "music").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "music")
    for other in (f"{tmp_path}/music/", f"{tmp_path}/link", f"{tmp_path}/./music/../music"):
        with pytest.raises(DatasetError, match=r"datasets\[0\]\.path \(.*music\) and datasets\[1\]\.path .* are the "
                                               r"same folder.*encoded twice"):
            check_distinct_inputs(_config({"path": str(tmp_path / "music")}, {"path": other}))


def test_a_folder_inside_another_is_refused(tmp_path):
    config = _config({"path": str(tmp_path / "a" / "b")}, {"path": str(tmp_path / "c")}, {"path": str(tmp_path / "a")})
    with pytest.raises(DatasetError, match=r"datasets\[0\]\.path \(.*/a/b\) is inside datasets\[2\]\.path"):
        check_distinct_inputs(config)


def test_sibling_folders_and_s3_prefixes(tmp_path):
    check_distinct_inputs(_config({"path": str(tmp_path / "a")}, {"path": str(tmp_path / "ab")}))
    check_distinct_inputs(_config({"s3_path": "s3://b/train"}, {"s3_path": "s3://b/train2"}, kind="wds"))
    with pytest.raises(DatasetError, match="same folder"):
        check_distinct_inputs(_config({"s3_path": "s3://b/train"}, {"s3_path": "s3://b/train/"}, kind="wds"))
    with pytest.raises(DatasetError, match="is inside"):
        check_distinct_inputs(_config({"s3_path": "s3://b/train/x"}, {"s3_path": "s3://b/train"}, kind="wds"))
    roots = input_roots(_config({"path": "rel"}, {"s3_path": "s3://b/p/"}, kind="wds"))
    assert roots[0].local is not None and roots[0].local.is_absolute() and roots[1].s3 == "s3://b/p"
