"""LatentMeta: typed fields, unknown ones kept, and the same bytes written back."""

import json
from pathlib import Path

import numpy as np
import torch
from hypothesis import given
from hypothesis import strategies as st

from preencode.store.meta import LatentMeta, json_safe

REFERENCE = Path(__file__).parents[1] / "data" / "fixtures" / "reference_output"

_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
                     | st.text(max_size=5), lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=8)
_keys = st.sampled_from(["path", "relpath", "timestamps", "seconds_start", "seconds_total", "padding_mask",
                         "sample_rate", "load_time", "dataset_id", "input_fingerprint", "shard", "key", "prompt",
                         "phase_inverted", "extra", "order"]) | st.text(max_size=8)


@given(st.dictionaries(_keys, _json, max_size=12))
def test_any_object_round_trips_with_its_key_order(data):
    meta = LatentMeta.from_dict(data)
    assert list(meta.to_dict().items()) == list(data.items())
    assert meta.to_json() == json.dumps(data, ensure_ascii=False).encode("utf-8")


def test_reference_metadata_round_trips_byte_for_byte():
    files = sorted(REFERENCE.glob("*/*.json"))
    assert files
    for path in files:
        meta = LatentMeta.from_dict(json.loads(path.read_bytes()))
        assert meta.to_json() == path.read_bytes()
        assert meta.load_time is not None and meta.mask(len(meta.padding_mask)) is not None


def test_known_fields_are_typed_and_wrong_types_are_kept_aside():
    meta = LatentMeta.from_dict({"seconds_total": "3", "prompt": "a dog", "padding_mask": [1, 1, 0],
                                 "phase_inverted": 1, "mood": "calm"})
    assert meta.seconds_total is None and meta.extra["seconds_total"] == "3"
    assert meta.prompt == "a dog" and meta.phase_inverted is None and meta.get("mood") == "calm"
    assert meta.mask(3).tolist() == [True, True, False] and meta.mask(4) is None
    assert "mood" in meta and "path" not in meta


def test_fields_set_after_reading_are_written_after_the_others():
    meta = LatentMeta.from_dict({"path": "a.wav", "padding_mask": "broken"})
    meta.padding_mask = [1, 0]
    meta.prompt = "new"
    assert list(meta.to_dict().items()) == [("path", "a.wav"), ("padding_mask", [1, 0]), ("prompt", "new")]


def test_json_safe_makes_tensors_and_numpy_values_plain():
    value = {"a": torch.tensor([1.0, float("nan")]), "b": np.float32(2.5), 3: (np.int64(4),), "c": b"x"}
    assert json_safe(value) == {"a": [1.0, None], "b": 2.5, "3": [4], "c": "x"}
