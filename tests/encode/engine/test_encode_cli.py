"""End-to-end ``preencode encode`` on real files with a tiny model: layout, metadata, details, equality
with the public API, flags and error paths."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from preencode import load_autoencoder
from preencode.audio import load_audio
from preencode.cli import main
from tests.encode_setup import SAMPLE_SIZE, SR, dataset_config, encode_args, read_output, write_clips
from tests.helpers import save_ckpt, tiny_config, write_json


def _window(path, channels=2):
    audio, _ = load_audio(path, sample_rate=SR, channels=channels)
    out = torch.zeros(channels, SAMPLE_SIZE)
    n = min(audio.shape[-1], SAMPLE_SIZE)
    out[:, :n] = audio[:, :n]
    return out, audio.shape[-1]


def test_layout_metadata_details_and_latents_match_public_api(model_files, clips, tmp_path):
    folder, cfg = clips
    out = tmp_path / "out"
    assert main(encode_args(model_files, cfg, out, "--posterior", "mean", "--batch-size", "3")) == 0
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    ids = [f"{i:013d}" for i in range(7)]
    assert files == sorted([f"0/{i}.npy" for i in ids] + [f"0/{i}.json" for i in ids]
                           + ["details.json", "failures.jsonl", "manifest.jsonl"])
    model = load_autoencoder(model_files[0], model_files[1])
    sources = sorted(folder.iterdir())
    output = read_output(out)
    for i, src in enumerate(sources):
        latent, meta = output[f"{i:013d}"]
        window, n = _window(src)
        with torch.inference_mode():
            expected = model.encode(window[None], posterior="mean")[0].numpy()
        assert latent.dtype == np.float32 and latent.shape == (4, SAMPLE_SIZE // 8)
        np.testing.assert_allclose(latent, expected, atol=5e-5, rtol=1e-4)  # batch of 3 vs 1: float32 sums
        assert meta["path"] == str(src) and meta["relpath"] == src.name
        assert meta["sample_rate"] == SR and meta["seconds_start"] == 0
        assert meta["seconds_total"] == math.ceil(n / SR)
        assert meta["timestamps"] == [0.0, SAMPLE_SIZE / max(n, SAMPLE_SIZE)]
        frames = latent.shape[1]
        expected_mask = [1 if j * SAMPLE_SIZE // frames < n else 0 for j in range(frames)]
        assert meta["padding_mask"] == expected_mask
    details = json.loads((out / "details.json").read_text())
    assert details["model_config"] == json.loads(model_files[0].read_text())
    assert details["dataset_config"] == json.loads(cfg.read_text())
    assert details["sample_size"] == SAMPLE_SIZE and len(details["checkpoint_sha256"]) == 64
    assert details["latent"] == {"latent_dim": 4, "downsampling_ratio": 8, "sample_rate": SR, "audio_channels": 2,
                                 "is_discrete": False, "dtype": "float32", "num_quantizers": None,
                                 "codebook_size": None, "posterior": "mean", "posterior_std_sidecar": False}
    assert details["args"]["batch_size"] == 3 and details["preencode_version"]


def test_reference_style_reader_accepts_output(model_files, clips, tmp_path):
    """A loader written against stable-audio-tools' PreEncodedDataset: scan .npy, read the sibling .json."""
    out = tmp_path / "out"
    assert main(encode_args(model_files, clips[1], out)) == 0
    found = [p for p in out.rglob("*") if p.suffix == ".npy"]
    assert len(found) == 7
    for npy in found:
        latent = torch.from_numpy(np.load(npy))
        info = json.loads(npy.with_suffix(".json").read_text())
        assert len(info["padding_mask"]) == latent.shape[-1]
        assert {"seconds_start", "seconds_total", "timestamps", "path", "relpath"} <= info.keys()


def test_posterior_sample_is_reproducible_and_differs_from_mean(model_files, clips, tmp_path):
    a, b, m = tmp_path / "a", tmp_path / "b", tmp_path / "m"
    assert main(encode_args(model_files, clips[1], a, "--batch-size", "1")) == 0
    assert main(encode_args(model_files, clips[1], b, "--batch-size", "4", "--shuffle")) == 0
    assert main(encode_args(model_files, clips[1], m, "--posterior", "mean")) == 0
    ra, rb, rm = read_output(a), read_output(b), read_output(m)
    assert ra.keys() == rb.keys() == rm.keys()
    for key in ra:
        np.testing.assert_allclose(ra[key][0], rb[key][0], atol=1e-4, rtol=1e-4)  # batch 1 vs 4
        assert not np.allclose(ra[key][0], rm[key][0])


def test_limit_batches_encodes_exactly_n_batches_then_resumes(model_files, clips, tmp_path):
    out = tmp_path / "out"
    assert main(encode_args(model_files, clips[1], out, "--batch-size", "2", "--limit-batches", "2")) == 0
    assert len(read_output(out)) == 4
    assert main(encode_args(model_files, clips[1], out, "--batch-size", "2")) == 0
    assert len(read_output(out)) == 7


def test_model_half_runs_and_records_dtype(model_files, clips, tmp_path):
    out = tmp_path / "out"
    assert main(encode_args(model_files, clips[1], out, "--model-half")) == 0
    latents = read_output(out)
    assert all(z.dtype == np.float16 for z, _ in latents.values())
    assert json.loads((out / "details.json").read_text())["latent"]["dtype"] == "float16"


@pytest.mark.parametrize("bottleneck,expected_q,dtype,size", [
    ({"type": "dac_rvq", "config": {"input_dim": 4, "n_codebooks": 3, "codebook_size": 300, "codebook_dim": 2}},
     3, np.uint16, 300),
    ({"type": "fsq", "config": {"dim": 4, "levels": [5, 5, 4], "num_codebooks": 1}}, 1, np.uint8, 100),
])
def test_is_discrete_stores_tokens(tmp_path, clips, bottleneck, expected_q, dtype, size):
    from preencode.models.factory import build_autoencoder
    from tests.helpers import randomized

    cfg = tiny_config(sample_rate=SR, bottleneck=bottleneck)
    model = randomized(build_autoencoder(cfg), seed=5)
    files = (write_json(tmp_path / "d.json", cfg), save_ckpt(model, tmp_path / "d.ckpt"), model)
    out = tmp_path / "tokens"
    assert main(encode_args(files, clips[1], out, "--is-discrete")) == 0
    tokens = read_output(out)
    assert len(tokens) == 7
    for z, meta in tokens.values():
        assert z.dtype == dtype and z.shape == (expected_q, SAMPLE_SIZE // 8)
        assert z.min() >= 0 and z.max() < size and len(meta["padding_mask"]) == z.shape[1]
    latent = json.loads((out / "details.json").read_text())["latent"]
    assert latent["is_discrete"] and latent["num_quantizers"] == expected_q and latent["codebook_size"] == size
    # a discrete model without --is-discrete, and --is-discrete with a continuous model
    assert main(encode_args(files, clips[1], tmp_path / "x")) == 2


def test_is_discrete_with_continuous_model_is_an_error(model_files, clips, tmp_path, capsys):
    assert main(encode_args(model_files, clips[1], tmp_path / "x", "--is-discrete")) == 2
    assert "continuous" in capsys.readouterr().err


def test_failed_inputs_are_recorded_and_exit_code_is_3(model_files, tmp_path):
    folder = tmp_path / "audio"
    write_clips(folder, [200, 300])
    (folder / "broken.wav").write_bytes(b"RIFF\x00\x00")
    (folder / "text.mp3").write_text("not audio")
    out = tmp_path / "out"
    assert main(encode_args(model_files, dataset_config(tmp_path, folder), out)) == 3
    failures = [json.loads(line) for line in (out / "failures.jsonl").read_text().splitlines()]
    assert sorted(f["path"].rsplit("/", 1)[-1] for f in failures) == ["broken.wav", "text.mp3"]
    assert all(f["reason"] and f["stage"] for f in failures)
    assert len(read_output(out)) == 2  # the good files, nothing substituted


@pytest.mark.parametrize("change,message", [
    (["--sample-size", "250"], "Use 248 or 256"),
    (["--posterior", "mean"], 'other settings: --posterior was "sample", now "mean".'),
    (["--seed", "5"], "other settings: --seed was 0, now 5."),
])
def test_usage_errors_exit_2_before_any_work(model_files, clips, tmp_path, capsys, change, message):
    out = tmp_path / "out"
    assert main(encode_args(model_files, clips[1], out)) == 0
    assert main(encode_args(model_files, clips[1], out, *change)) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_other_checkpoint_on_existing_output_needs_overwrite(model_files, clips, tmp_path, capsys):
    from preencode.models.factory import build_autoencoder
    from tests.helpers import randomized

    out = tmp_path / "out"
    assert main(encode_args(model_files, clips[1], out)) == 0
    other = save_ckpt(randomized(build_autoencoder(tiny_config(sample_rate=SR)), seed=99), tmp_path / "other.ckpt")
    files = (model_files[0], other, None)
    assert main(encode_args(files, clips[1], out)) == 2
    assert "the checkpoint (--ckpt-path, SHA-256) was " in capsys.readouterr().err
    assert main(encode_args(files, clips[1], out, "--overwrite")) == 0
    assert len(read_output(out)) == 7


def test_missing_files_and_bad_configs_are_one_line_errors(model_files, clips, tmp_path, capsys):
    config, ckpt, _ = model_files
    cases = [
        encode_args((config, tmp_path / "missing.ckpt", None), clips[1], tmp_path / "o"),
        encode_args((tmp_path / "missing.json", ckpt, None), clips[1], tmp_path / "o"),
        encode_args(model_files, write_json(tmp_path / "bad.json", {"dataset_type": "audio_dirr", "datasets": []}),
                    tmp_path / "o"),
        encode_args(model_files, write_json(tmp_path / "pe.json", {"dataset_type": "pre_encoded",
                                                                   "datasets": [{"id": "x", "path": "/x"}]}),
                    tmp_path / "o"),
    ]
    for argv in cases:
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("preencode encode: error: ") and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_inputs_changed_since_first_run_is_refused(model_files, clips, tmp_path, capsys):
    folder, cfg = clips
    out = tmp_path / "out"
    assert main(encode_args(model_files, cfg, out, "--limit-batches", "1")) == 0
    write_clips(folder / "more", [123])
    assert main(encode_args(model_files, cfg, out)) == 2
    assert "inputs changed" in capsys.readouterr().err


def test_skipping_padding_does_not_change_latents_and_none_is_read_as_off(model_files, clips, tmp_path):
    """Default (padding skipped) == --no-skip-padding, posterior mean; the fast encoder against the plain model is
    test_layout_metadata_details_and_latents_match_public_api. ``--compile none`` (once the plain encoder) is off."""
    runs = {"default": [], "full": ["--no-skip-padding", "--compile", "none"]}
    outputs = {}
    for name, extra in runs.items():
        assert main(encode_args(model_files, clips[1], tmp_path / name, "--posterior", "mean", "--batch-size", "3",
                                *extra)) == 0
        outputs[name] = read_output(tmp_path / name)
    assert outputs["default"].keys() == outputs["full"].keys()
    for key, (latent, meta) in outputs["default"].items():
        np.testing.assert_allclose(latent, outputs["full"][key][0], atol=1e-4, rtol=1e-4)
        assert meta == outputs["full"][key][1]
    assert json.loads((tmp_path / "full" / "details.json").read_text())["args"]["compile"] == "off"


def test_custom_metadata_rejections_are_logged_and_kept_across_resumes(model_files, tmp_path):
    folder = tmp_path / "audio"
    write_clips(folder, [100, 200, 300, 400, 500])
    module = tmp_path / "meta.py"
    module.write_text("def get_custom_metadata(info, audio):\n"
                      "    if info['relpath'] in ('clip_001.wav', 'clip_004.wav'):\n"
                      "        return {'__reject__': True}\n"
                      "    return {'prompt': 'len ' + str(audio.shape[-1])}\n")
    cfg = write_json(tmp_path / "ds.json", {"dataset_type": "audio_dir", "random_crop": False, "datasets": [
        {"id": "clips", "path": str(folder), "custom_metadata_module": str(module)}]})
    out = tmp_path / "out"
    assert main(encode_args(model_files, cfg, out, "--limit-batches", "1", "--batch-size", "2",
                            "--shuffle")) == 0
    assert main(encode_args(model_files, cfg, out, "--batch-size", "2")) == 0
    latents = read_output(out)
    assert sorted(latents) == [f"{i:013d}" for i in (0, 2, 3)]
    assert all(meta["prompt"] == f"len {SAMPLE_SIZE}" for _, meta in latents.values())
    rejected = [json.loads(line) for line in (out / "rejected.jsonl").read_text().splitlines()]
    assert [r["index"] for r in rejected] == [1, 4]
    assert (out / "failures.jsonl").read_text() == ""


@pytest.mark.parametrize("flags,message", [
    (["--strategy", "ddp_spawn"], "not supported for encoding"),
    (["--devices", "abc"], "--devices 'abc' is not valid"),
    pytest.param(["--accelerator", "gpu"], "cannot be used here",
                 marks=pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")),
    (["--strategy", "nonsense"], "cannot be used here"),
])
def test_lightning_options_are_checked_before_any_work(model_files, clips, tmp_path, capsys, flags, message):
    assert main(encode_args(model_files, clips[1], tmp_path / "o", *flags)) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and "inputs" not in err  # before the dataset scan
    assert not (tmp_path / "o").exists()


def test_store_std_stores_the_mean_so_loaders_sample_once(model_files, clips, tmp_path):
    out = tmp_path / "out"
    assert main(encode_args(model_files, clips[1], out, "--store-std")) == 0
    assert json.loads((out / "details.json").read_text())["latent"]["posterior"] == "mean"
    mean = tmp_path / "mean"
    assert main(encode_args(model_files, clips[1], mean, "--posterior", "mean")) == 0
    for key, (latent, _) in read_output(out).items():
        np.testing.assert_allclose(latent, read_output(mean)[key][0], atol=1e-6)


def test_a_file_shorter_than_one_sample_at_the_model_rate_is_a_failure(model_files, tmp_path):
    folder = tmp_path / "audio"
    write_clips(folder, [300])
    import soundfile as sf
    sf.write(folder / "tiny.wav", np.zeros((1, 2), np.float32), 48000)
    out = tmp_path / "out"
    assert main(encode_args(model_files, dataset_config(tmp_path, folder), out)) == 3
    failures = [json.loads(line) for line in (out / "failures.jsonl").read_text().splitlines()]
    assert [f["reason"] for f in failures] == [f"shorter than one sample at {SR} Hz"]


def test_verify_checks_every_manifest_input_is_accounted_for(model_files, tmp_path, capsys):

    folder = tmp_path / "audio"
    write_clips(folder, [100, 200, 300])
    (folder / "broken.wav").write_bytes(b"RIFF")
    out = tmp_path / "out"
    assert main(encode_args(model_files, dataset_config(tmp_path, folder), out)) == 3
    capsys.readouterr()
    assert main(["verify", str(out)]) == 0  # three latents and one failure record: all inputs accounted for
    (out / "0" / "0000000000002.npy").unlink()
    (out / "0" / "0000000000002.json").unlink()
    assert main(["verify", str(out)]) == 1
    assert "1 input(s) have no latent and no failure or rejection record: 0000000000002" in capsys.readouterr().out


def test_a_resumed_run_with_nothing_left_builds_no_model_and_imports_no_lightning(model_files, clips, tmp_path,
                                                                                 monkeypatch, capsys, caplog):
    out, summary_json = tmp_path / "out", tmp_path / "summary.json"
    assert main(encode_args(model_files, clips[1], out)) == 0
    before = {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    capsys.readouterr()

    def forbidden(*_args, **_kwargs):
        raise AssertionError("the model or Lightning was used although nothing was left to encode")

    import preencode.encode.engine.job as job
    import preencode.models.checkpoint as checkpoint

    monkeypatch.setattr(checkpoint, "load_autoencoder", forbidden)
    monkeypatch.setattr(job, "check_lightning", forbidden)
    assert main(encode_args(model_files, clips[1], out, "--summary-json", str(summary_json))) == 0
    assert "Nothing left to encode: all 7 inputs" in caplog.text and "Total length of `DataLoader`" not in caplog.text
    summary = json.loads(summary_json.read_text())
    assert (summary["encoded"], summary["skipped"], summary["complete"]) == (0, 7, 7)
    assert {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before  # nothing written
    # Inputs that changed are still refused before anything else.
    write_clips(clips[0] / "more", [123])
    assert main(encode_args(model_files, clips[1], out)) == 2
    assert "inputs changed" in capsys.readouterr().err
