"""preencode inspect: statistics equal numpy's over a known set; hours; failures; --json; --plot."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from preencode.cli import main as cli
from preencode.tools.failures import normalise_reason
from preencode.tools.stats import ChannelMoments, Reservoir
from preencode.tools.summary import summarise
from tests.helpers import tiny_config
from tests.store.trees import RATIO, SAMPLE_RATE, details, make_items, valid_values, write_tree


@pytest.mark.parametrize("shards", [False, True])
@pytest.mark.parametrize("include_padding", [False, True])
def test_statistics_equal_numpy_over_the_known_set(tmp_path, shards, include_padding):
    items = make_items()
    write_tree(tmp_path, items, shards=shards)
    summary = summarise(tmp_path, include_padding=include_padding)
    values = valid_values(items, include_padding)
    m = summary.moments
    assert m.count == values.shape[1]
    np.testing.assert_allclose(m.mean, values.mean(axis=1), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(m.std, values.std(axis=1), rtol=1e-12)
    np.testing.assert_allclose(m.minimum, values.min(axis=1))
    np.testing.assert_allclose(summary.suggested_scale, values.std(), rtol=1e-12)
    valid_frames = sum(int(it.mask.sum()) for it in items)
    assert summary.hours == pytest.approx(valid_frames * RATIO / SAMPLE_RATE / 3600)
    assert summary.latents == 5 and dict(summary.per_rank) == {"0": 3, "1": 2}
    assert summary.shapes == {"4x20": 5} and summary.dtypes == {"float32": 5}
    assert summary.frames_valid == valid_frames and summary.frames_total == 100
    assert summary.shards == (2 if shards else 0)


@pytest.mark.parametrize("shards", [False, True])
def test_suggested_scale_counts_the_stored_std_as_a_loader_draws_it(tmp_path, shards, capsys):
    """With --store-std a loader feeds mean + std * noise: its std is sqrt(var(mean) + mean(std²))."""
    items = make_items(with_std=True)
    write_tree(tmp_path, items, shards=shards)
    summary = summarise(tmp_path)
    means = valid_values(items)
    stds = np.concatenate([it.std[:, it.mask.astype(bool)] for it in items], axis=1).astype(np.float64)
    expected = np.sqrt(means.var() + np.mean(stds**2))
    np.testing.assert_allclose(summary.suggested_scale, expected, rtol=1e-10)
    np.testing.assert_allclose(summary.stored_std_rms, np.sqrt(np.mean(stds**2)), rtol=1e-10)
    drawn = means + stds * np.random.default_rng(0).standard_normal((200,) + means.shape)
    assert drawn.std() == pytest.approx(expected, rel=0.01)  # what a training loader would see
    assert summary.suggested_scale > summary.moments.overall_std
    assert cli(["inspect", str(tmp_path)]) == 0
    report = capsys.readouterr().out
    assert f"std {summary.moments.overall_std:.4f}" in report  # the stored means' std ...
    assert f"suggested scale  {expected:.4f}  (std of mean + std * noise" in report  # ... and the scale
    assert cli(["inspect", str(tmp_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["suggested_scale"] == pytest.approx(expected)


def test_padding_is_left_out_by_default(tmp_path):
    items = make_items()
    assert any(not it.mask.all() for it in items)
    write_tree(tmp_path, items)
    assert summarise(tmp_path).moments.count < summarise(tmp_path, include_padding=True).moments.count


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, 7), min_size=1, max_size=6), st.integers(0, 1000))
def test_chan_merge_equals_one_pass(sizes, seed):
    rng = np.random.default_rng(seed)
    blocks = [rng.normal(3.0, 2.0, size=(3, n)) for n in sizes]
    moments = ChannelMoments(3)
    for block in blocks:
        moments.update(block)
    values = np.concatenate(blocks, axis=1)
    assert moments.count == values.shape[1]
    if values.shape[1]:
        np.testing.assert_allclose(moments.mean, values.mean(axis=1), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(moments.std, values.std(axis=1), rtol=1e-8, atol=1e-12)
        np.testing.assert_allclose(moments.overall_std, values.std(), rtol=1e-8)


def test_reservoir_keeps_a_bounded_uniform_sample():
    reservoir = Reservoir(size=1000, seed=1)
    for start in range(0, 20_000, 500):
        reservoir.update(np.arange(start, start + 500, dtype=float))
    assert reservoir.values.size == 1000 and np.unique(reservoir.values).size == 1000
    assert 8_000 < reservoir.values.mean() < 12_000  # uniform over 0..19999


def test_reference_tree_reads_the_model_config_it_names(tmp_path):
    config = tmp_path / "vae.json"
    config.write_text(json.dumps(tiny_config(latent_dim=4)))
    items = make_items()
    ref = {"model_config": str(config), "dataset_config": "ds.json", "sample_size": 160, "args": {}}
    write_tree(tmp_path / "out", items, details_json=ref)
    summary = summarise(tmp_path / "out")
    assert summary.format.startswith("reference")
    assert summary.latent.downsampling_ratio == RATIO and summary.latent.latent_dim == 4
    valid_frames = sum(int(it.mask.sum()) for it in items)
    assert summary.hours == pytest.approx(valid_frames * RATIO / SAMPLE_RATE / 3600)


def test_without_details_hours_are_estimated_from_seconds_total(tmp_path):
    items = make_items()
    write_tree(tmp_path, items)
    (tmp_path / "details.json").unlink()
    for meta_path in tmp_path.glob("*/*.json"):  # reference metadata has no sample_rate
        meta = json.loads(meta_path.read_text())
        del meta["sample_rate"]
        meta_path.write_text(json.dumps(meta))
    summary = summarise(tmp_path)
    valid_frames = sum(int(it.mask.sum()) for it in items)
    assert "estimated" in summary.seconds_source
    assert summary.hours == pytest.approx(valid_frames * RATIO / SAMPLE_RATE / 3600)
    assert summary.moments.count == valid_frames  # statistics do not need details


def test_failures_grouped_by_stage_and_normalised_reason(tmp_path):
    failures = [
        {"path": "/data/a.mp3", "stage": "decode", "reason": "cannot decode /data/a.mp3: 12 bytes read"},
        {"path": "/data/b c.mp3", "stage": "decode", "reason": "cannot decode /data/b c.mp3: 7 bytes read"},
        {"path": "/data/c.wav", "stage": "encode", "reason": "NaN in latent"},
    ]
    write_tree(tmp_path, make_items(), failures=failures, rejected=4)
    summary = summarise(tmp_path)
    assert summary.failures.failures == 3 and summary.failures.rejected == 4
    groups = [(g.stage, g.reason, g.count) for g in summary.failures.groups]
    assert groups == [("decode", "cannot decode <path>: <n> bytes read", 2), ("encode", "NaN in latent", 1)]
    assert normalise_reason("file '/x/y.wav' has 3 channels") == "file '…' has <n> channels"


def test_json_output_is_one_valid_object(tmp_path, capsys):
    write_tree(tmp_path, make_items(), failures=[{"path": "/a", "stage": "load", "reason": "x"}])
    assert cli(["inspect", str(tmp_path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["latents"] == 5 and report["failures"]["count"] == 1
    assert len(report["statistics"]["std"]) == 4 and report["suggested_scale"] > 0
    assert report["statistics"]["frames_counted"] == "valid"


def test_human_report_and_plot(tmp_path, capsys):
    write_tree(tmp_path / "out", make_items())
    png = tmp_path / "stats.png"
    assert cli(["inspect", str(tmp_path / "out"), "--plot", str(png)]) == 0
    text = capsys.readouterr().out
    assert "suggested scale" in text and "latents" in text and "per channel (valid frames only" in text
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_missing_folder_is_a_usage_error(tmp_path, capsys):
    assert cli(["inspect", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert "Output folder not found" in err and "Traceback" not in err
    assert cli(["inspect", "--bogus"]) == 2


def test_dtype_float16_and_details_mismatch_do_not_break_inspect(tmp_path):
    items = make_items(dtype="float16")
    write_tree(tmp_path, items, details_json=details(dtype="float16"))
    summary = summarise(tmp_path)
    np.testing.assert_allclose(summary.moments.mean, valid_values(items).mean(axis=1), rtol=1e-6, atol=1e-9)
