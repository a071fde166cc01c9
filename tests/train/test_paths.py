"""The on-the-fly and pre-encoded paths feed the diffusion the same first batch (and the same loss)."""

from __future__ import annotations

import json

import numpy as np
import soundfile as sf
import torch
import torch.nn.functional as F

from preencode.data.config import parse_dataset_config
from preencode.data.loaders import make_loader
from preencode.models.diffusion import build_diffusion_model, load_diffusion_config
from preencode.train.audio_batches import build_audio_dataset
from preencode.train.module import DiffusionTrainingModule
from preencode.train.run import build_dataset
from tests.train.conftest import dataset_config, model_config, randomize


def test_on_the_fly_and_pre_encoded_first_batch_match(tmp_path):
    rng = np.random.default_rng(0)
    audio_dir = tmp_path / "audio"
    audio_dir.mkdir()
    for i, length in enumerate([128, 100, 200, 64]):
        sf.write(audio_dir / f"{i:02d}.wav", (0.3 * rng.standard_normal((length, 2))).astype(np.float32), 16000,
                 subtype="FLOAT")
    raw = model_config()
    raw["model"]["pretransform"]["scale"] = 2.0
    otf_cfg = load_diffusion_config(dict(raw, training=dict(raw["training"], pre_encoded=False)))
    pre_cfg = load_diffusion_config(raw)
    model = randomize(build_diffusion_model(otf_cfg), seed=3)
    otf = DiffusionTrainingModule(model, otf_cfg.training, encode_posterior="mean")
    pre = DiffusionTrainingModule(build_diffusion_model(pre_cfg), pre_cfg.training)
    pre.load_state_dict(otf.state_dict())

    audio_data = parse_dataset_config({"dataset_type": "audio_dir", "random_crop": False,
                                       "datasets": [{"id": "a", "path": str(audio_dir)}]})
    audio_set = build_audio_dataset(audio_data, 16000, 128, 2)
    audio_batch = next(iter(make_loader(audio_set, batch_size=4, num_workers=0, shuffle=False, drop_last=False)))

    # pre-encode the same windows as the encoder does: posterior mean, mask resampled to latent frames
    root = tmp_path / "latents" / "0"
    root.mkdir(parents=True)
    with torch.no_grad():
        latents = model.pretransform.model.encode(audio_batch.data, posterior="mean")
    masks = F.interpolate(audio_batch.padding_mask[:, None].float(), size=latents.shape[-1], mode="nearest")[:, 0]
    for i, (lat, mask, info) in enumerate(zip(latents, masks, audio_batch.infos, strict=True)):
        np.save(root / f"{i:013d}.npy", lat.numpy())
        (root / f"{i:013d}.json").write_text(json.dumps({
            "padding_mask": mask.int().tolist(), "seconds_start": info["seconds_start"],
            "seconds_total": info["seconds_total"], "path": info["path"], "prompt": "a dog barks"}))
    pre_set = build_dataset(pre_cfg, parse_dataset_config(dataset_config(tmp_path / "latents")), seed=0)
    pre_batch = next(iter(make_loader(pre_set, batch_size=4, num_workers=0, shuffle=False, drop_last=False)))

    x_otf, m_otf = otf.prepare_input(audio_batch)
    x_pre, m_pre = pre.prepare_input(pre_batch)
    assert x_otf.shape == x_pre.shape == (4, 4, 16)
    torch.testing.assert_close(x_pre, x_otf, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(x_pre, latents / 2.0)  # divided by the pretransform's scale on both paths
    assert torch.equal(m_otf, m_pre)
    assert not m_pre[1, -3:].any() and m_pre[0].all()  # 100 of 128 samples: the last frames are padding
    assert [i["seconds_total"] for i in pre_batch.infos] == [i["seconds_total"] for i in audio_batch.infos]
