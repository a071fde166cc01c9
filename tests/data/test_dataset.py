"""AudioWindowDataset: metadata, determinism, custom metadata modules, options, DataLoader workers."""

from __future__ import annotations

import math
import os
import textwrap

import numpy as np
import pytest
import torch

from preencode.data import (
    AudioWindowDataset,
    Failure,
    Rejection,
    WindowBatch,
    WindowSample,
    build_plan,
    collate,
    parse_dataset_config,
    split_indices,
)
from tests.audio_files import tone, write_audio

SR = 16000


def _plan(root, module=None, **top):
    entry = {"id": "main", "path": str(root)}
    if module:
        entry["custom_metadata_module"] = str(module)
    config = parse_dataset_config({"dataset_type": "audio_dir", "datasets": [entry], **top})
    return config, build_plan(config)


@pytest.fixture()
def folder(tmp_path):
    root = tmp_path / "audio"
    root.mkdir()
    write_audio(root / "long.flac", tone(2.5, 22050, 2), 22050)
    write_audio(root / "short.wav", tone(0.3, SR), SR)
    write_audio(root / "quiet.wav", tone(1.0, SR, amp=0.0005), SR)
    return root


def test_sample_metadata_matches_the_reference_fields(folder):
    config, plan = _plan(folder)
    ds = AudioWindowDataset.from_config(plan.items, config, sample_rate=SR, channels=2, sample_size=SR, seed=1)
    by_name = {os.path.basename(r.metadata["path"]): r for r in (ds[i] for i in range(len(ds)))}
    assert set(by_name) == {"long.flac", "short.wav", "quiet.wav"}  # silence kept by default
    long = by_name["long.flac"]
    md = long.metadata
    assert long.audio.shape == (2, SR) and long.audio.dtype == torch.float32
    assert md["relpath"] == "long.flac" and md["sample_rate"] == SR and md["dataset_id"] == "main"
    total = round(2.5 * SR)
    start, end = md["timestamps"]
    offset = round(start * total)
    assert 0 <= offset <= total - SR and math.isclose(end, (offset + SR) / total)
    assert md["seconds_start"] == offset // SR and md["seconds_total"] == 3
    assert torch.equal(md["padding_mask"], torch.ones(SR))
    stat = os.stat(folder / "long.flac")
    assert md["input_fingerprint"] == {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    short = by_name["short.wav"].metadata
    assert short["timestamps"] == (0.0, 1.0) and short["seconds_total"] == 1
    assert int(short["padding_mask"].sum()) == round(0.3 * SR)
    assert not by_name["short.wav"].audio[:, round(0.3 * SR):].any()


def test_same_seed_same_windows_other_seed_other_windows(folder):
    _, plan = _plan(folder)
    a = AudioWindowDataset(plan.items, SR, 2, 4000, random_crop=True, seed=5)
    b = AudioWindowDataset(plan.items, SR, 2, 4000, random_crop=True, seed=5)
    c = AudioWindowDataset(plan.items, SR, 2, 4000, random_crop=True, seed=6)
    i = [it.relpath for it in plan.items].index("long.flac")
    assert torch.equal(a[i].audio, b[i].audio)
    assert a[i].metadata["timestamps"] != c[i].metadata["timestamps"]
    # a subset (as one rank would hold) gives the same window for the same item
    sub = AudioWindowDataset([plan.items[i]], SR, 2, 4000, random_crop=True, seed=5)
    assert torch.equal(sub[0].audio, a[i].audio) and sub[0].index == plan.items[i].index


def test_drop_silent_rejects_and_phase_flip_is_opt_in_and_recorded(folder):
    config, plan = _plan(folder, drop_silent=True, augment_phase=True)
    ds = AudioWindowDataset.from_config(plan.items, config, sample_rate=SR, channels=1, sample_size=SR)
    results = [ds[i] for i in range(len(ds))]
    rejected = [r for r in results if isinstance(r, Rejection)]
    assert [os.path.basename(r.path) for r in rejected] == ["quiet.wav"] and "silent" in rejected[0].reason
    plain = AudioWindowDataset(plan.items, SR, 1, SR)
    for r in results:
        if isinstance(r, WindowSample):
            ref = plain[r.index].audio
            flipped = r.metadata["phase_inverted"]
            assert torch.equal(r.audio, -ref if flipped else ref)
            assert "phase_inverted" not in plain[r.index].metadata


CUSTOM = textwrap.dedent('''
    import torch
    LOADS = []
    LOADS.append(1)

    def get_custom_metadata(info, audio):
        name = info["relpath"]
        if name.startswith("short"):
            return {"__reject__": True}
        if name.startswith("quiet"):
            raise RuntimeError("cannot describe " + name)
        return {"prompt": "a tone", "loads": len(LOADS), "peak": float(audio.abs().max()),
                "__audio__": {"stem": torch.full((40000,), 0.25), "twice": torch.cat([audio, audio], 1) * 4}}
''')


def test_custom_metadata_module_reject_audio_and_errors(folder, tmp_path):
    module = tmp_path / "md.py"
    module.write_text(CUSTOM)
    config, plan = _plan(folder, module=module)
    ds = AudioWindowDataset.from_config(plan.items, config, sample_rate=SR, channels=2, sample_size=SR)
    results = {os.path.basename(r.metadata["path"] if isinstance(r, WindowSample) else r.path): r
               for r in (ds[i] for i in range(len(ds)))}
    assert isinstance(results["short.wav"], Rejection) and "md.py" in results["short.wav"].reason
    failed = results["quiet.wav"]
    assert isinstance(failed, Failure) and failed.stage == "custom_metadata"
    assert "RuntimeError: cannot describe quiet.wav" in failed.reason and failed.path.endswith("quiet.wav")
    md = results["long.flac"].metadata
    assert md["prompt"] == "a tone" and md["loads"] == 1  # imported once in this process
    assert "__audio__" not in md
    assert md["stem"].shape == (1, SR) and torch.allclose(md["stem"], torch.full((1, SR), 0.25))
    assert md["twice"].shape == (2, SR) and float(md["twice"].abs().max()) <= 1.0


def test_broken_custom_metadata_module_stops_before_any_work(folder, tmp_path):
    from preencode.errors import DatasetError
    module = tmp_path / "bad.py"
    module.write_text("def something_else(): pass\n")
    with pytest.raises(DatasetError, match="get_custom_metadata"):
        _plan(folder, module=module)


def test_dataloader_with_workers_over_split_ranks(folder):
    _, plan = _plan(folder)
    ds = AudioWindowDataset(plan.items, SR, 2, 8000, seed=0)
    seen = []
    for rank in range(2):
        subset = torch.utils.data.Subset(ds, list(split_indices(len(ds), 2, rank)))
        loader = torch.utils.data.DataLoader(subset, batch_size=2, num_workers=2, collate_fn=collate)
        for batch in loader:
            assert batch.audio.shape[1:] == (2, 8000)
            seen.extend(batch.indices)
    assert sorted(seen) == list(range(len(plan.items)))
    direct = ds[0].audio
    assert np.array_equal(direct.numpy(), ds[0].audio.numpy())


def test_channel_count_the_file_cannot_give_is_a_failure(folder):
    _, plan = _plan(folder)
    stereo = next(i for i, it in enumerate(plan.items) if it.relpath == "long.flac")
    result = AudioWindowDataset(plan.items, SR, 6, SR)[stereo]
    assert isinstance(result, Failure) and "cannot convert 2-channel audio to 6 channels" in result.reason


def test_collate_makes_a_typed_window_batch():
    mask = torch.zeros(8)
    mask[:5] = 1
    samples = [WindowSample(i, torch.full((2, 8), float(i)), {"path": f"{i}.wav", "padding_mask": mask, "x": i})
               for i in (7, 3)]
    failure, rejection = Failure("bad.wav", "decode", "truncated", 1), Rejection("quiet.wav", "silent", 2)
    batch = collate([samples[0], failure, samples[1], rejection])
    assert isinstance(batch, WindowBatch) and batch.indices == [7, 3] and batch.audio.shape == (2, 2, 8)
    assert batch.lengths.tolist() == [5, 5] and batch.audio_samples == 10
    assert all(m.dtype == torch.int8 and m.tolist() == [1] * 5 + [0] * 3 for m in batch.padding_masks)
    assert batch.metadata == [{"path": "7.wav", "x": 7}, {"path": "3.wav", "x": 3}]  # the mask has its own field
    assert "padding_mask" in samples[0].metadata  # the samples are not changed
    assert batch.failures == [failure] and batch.rejections == [rejection]
    moved = batch.to("cpu")  # what Lightning calls to move a batch to the device
    assert isinstance(moved, WindowBatch) and torch.equal(moved.audio, batch.audio) and moved.indices == [7, 3]
    from lightning.fabric.utilities.apply_func import move_data_to_device

    assert isinstance(move_data_to_device(batch, torch.device("cpu")), WindowBatch)


def test_a_batch_of_only_failures_has_no_audio():
    batch = collate([Failure("bad.wav", "decode", "truncated", 1)])
    assert batch.audio is None and batch.lengths is None and batch.audio_samples == 0 and batch.indices == []
    assert batch.to("cpu") is batch
