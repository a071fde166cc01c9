"""stable-audio-tools' reading path for pre-encoded shards reads the shards we write, and gives what ours gives.

The reference (stable_audio_tools/data/dataset.py at 50049e3) reads ``pre_encoded: true`` WebDataset shards with
``wds.tarfile_to_samples`` + ``wds.decode(npy_decoder)``, then ``WebDatasetDataLoader.wds_preprocess``'s
pre-encoded branch, then ``wds.to_tuple("audio", "json")``. The two functions are written again below from their
documented behaviour (not copied); webdataset 1.0.2 runs the pipeline around them.
"""

from __future__ import annotations

import io
import random

import numpy as np
import pytest
import torch
import webdataset as wds

from preencode.data.latent_sample import LatentSource
from preencode.data.latent_shards import LatentShardDataset


def npy_decoder(key, value):
    """As the reference's ``npy_decoder``: members whose extension is ``npy`` become arrays, others are left to
    webdataset's default handlers (``json`` is parsed by them)."""
    if key.split(".")[-1] == "npy":
        return np.lib.format.read_array(io.BytesIO(value))
    return None


def pre_encoded_preprocess(sample, latent_crop_length=None, random_crop=False):
    """As the pre-encoded branch of the reference's ``WebDatasetDataLoader.wds_preprocess``: the ``npy`` array is the
    "audio"; with a crop length, the crop starts at 0 (or at random up to the last 1 of the padding mask) and the
    mask is cut alike; the mask becomes a tensor; ``text`` is copied to ``prompt``."""
    latents = torch.from_numpy(sample.pop("npy"))
    meta = sample["json"]
    mask = meta["padding_mask"]
    if latent_crop_length is not None:
        last = len(mask) - 1 - mask[::-1].index(1)
        start = random.randint(0, last - latent_crop_length) if random_crop and last > latent_crop_length else 0
        latents = latents[:, start:start + latent_crop_length]
        mask = mask[start:start + latent_crop_length]
    meta["padding_mask"] = torch.tensor(mask)
    if "text" in meta:
        meta["prompt"] = meta["text"]
    sample["audio"] = latents
    meta["audio"] = latents
    return sample


def reference_samples(urls, latent_crop_length=None):
    pipeline = wds.DataPipeline(wds.SimpleShardList(urls), wds.tarfile_to_samples(), wds.decode(npy_decoder),
                                wds.map(lambda s: pre_encoded_preprocess(s, latent_crop_length)),
                                wds.to_tuple("__key__", "audio", "json"))
    return {key: (latents, meta) for key, latents, meta in pipeline}


@pytest.mark.parametrize("crop", [None, 16])
def test_the_reference_reads_our_shards_as_we_do(wds_output, crop):
    urls = [str(p) for p in sorted(wds_output.glob("*/*.tar"))]
    theirs, full = reference_samples(urls, crop), reference_samples(urls)
    ours = LatentShardDataset([LatentSource("enc", str(wds_output))], latent_crop_length=crop, random_crop=False,
                              shuffle=False, posterior_reader=None)  # the reference does not read std sidecars
    seen = []
    for x, info in ours:
        key = info["latent_filename"].rsplit(":", 1)[1].removesuffix(".npy")
        latents, meta = theirs[key]
        assert latents.dtype == torch.float32 and torch.equal(x, latents)
        assert torch.equal(info["padding_mask"], meta["padding_mask"].bool())
        for field in ("seconds_start", "seconds_total", "path", "relpath", "sample_rate", "input_fingerprint"):
            assert info[field] == meta[field], field
        # A documented difference: our crop moves timestamps to the part of the window it keeps.
        t0, t1 = meta["timestamps"]
        frames = len(full[key][1]["padding_mask"])
        assert info["timestamps"] == ([t0, t1] if crop is None else [t0, t0 + (t1 - t0) * crop / frames])
        seen.append(key)
    assert sorted(seen) == sorted(theirs) and len(seen) == 7
