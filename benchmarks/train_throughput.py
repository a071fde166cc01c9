"""Training throughput with pre-encoded latents vs. encoding audio on the fly (same data, one run).

    PYTHONPATH=. python3 benchmarks/train_throughput.py [--steps 40] [--clips 64] [--seconds 0.25]

Builds the tiny config of configs/tiny_dit_cond.json (random weights), writes ``--clips`` random audio
clips, pre-encodes them with the same pretransform (posterior mean), then trains the same model for
``--steps`` steps on each path and prints steps per second and the ratio. Timing starts after a few
warm-up steps.
"""

from __future__ import annotations

import argparse
import copy
import json
import tempfile
import time
from pathlib import Path

import lightning as L
import numpy as np
import soundfile as sf
import torch

from preencode.data.config import parse_dataset_config
from preencode.data.loaders import make_loader
from preencode.train.config import parse_model_config
from preencode.train.module import LatentDiffusionModule
from preencode.train.run import build_dataset

ROOT = Path(__file__).resolve().parents[1]


class StepTimer(L.Callback):
    def __init__(self, warmup: int) -> None:
        self.warmup, self.start, self.end, self.steps = warmup, 0.0, 0.0, 0

    def on_train_batch_end(self, trainer: L.Trainer, *args: object) -> None:
        if trainer.global_step == self.warmup:
            self.start = time.perf_counter()
        elif trainer.global_step > self.warmup:
            self.end, self.steps = time.perf_counter(), trainer.global_step - self.warmup


def run(config: dict, dataset: dict, state: dict, steps: int, batch: int, warmup: int) -> float:
    cfg = parse_model_config(config)
    module = LatentDiffusionModule(cfg)
    module.load_state_dict(state)
    data = parse_dataset_config(dataset)
    loader = make_loader(build_dataset(cfg, data, 0), batch_size=batch, num_workers=0, shuffle=True, drop_last=True)
    timer = StepTimer(warmup)
    L.seed_everything(0, verbose=False)
    trainer = L.Trainer(accelerator="auto", devices=1, max_steps=steps + warmup, logger=False, callbacks=[timer],
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(module, loader)
    return timer.steps / (timer.end - timer.start)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--clips", type=int, default=64)
    p.add_argument("--seconds", type=float, default=0.25)
    p.add_argument("--batch-size", type=int, default=8)
    args = p.parse_args()
    base = json.loads((ROOT / "configs" / "tiny_dit_cond.json").read_text())
    rate = base["sample_rate"]
    sample_size = int(args.seconds * rate) // 8 * 8
    base["sample_size"] = sample_size
    base["training"]["demo"] = None
    otf_cfg = copy.deepcopy(base)
    otf_cfg["training"].update(pre_encoded=False, encode_posterior="mean")
    torch.manual_seed(0)
    otf = LatentDiffusionModule(parse_model_config(otf_cfg))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "audio").mkdir()
        (tmp / "latents" / "0").mkdir(parents=True)
        rng = np.random.default_rng(0)
        ae = otf.model.pretransform.model
        for i in range(args.clips):
            audio = (0.3 * rng.standard_normal((1, sample_size))).astype(np.float32)
            sf.write(tmp / "audio" / f"{i:05d}.wav", audio.T, rate, subtype="FLOAT")
            with torch.no_grad():
                lat = ae.encode(torch.from_numpy(audio)[None], posterior="mean")[0]
            np.save(tmp / "latents" / "0" / f"{i:013d}.npy", lat.numpy())
            (tmp / "latents" / "0" / f"{i:013d}.json").write_text(json.dumps(
                {"padding_mask": [1] * lat.shape[-1], "seconds_start": 0.0, "seconds_total": args.seconds}))
        frames = sample_size // 8
        pre_data = {"dataset_type": "pre_encoded", "datasets": [{"id": "l", "path": str(tmp / "latents")}],
                    "latent_crop_length": frames}
        otf_data = {"dataset_type": "audio_dir", "datasets": [{"id": "a", "path": str(tmp / "audio")}],
                    "random_crop": False}
        state = otf.state_dict()
        pre_sps = run(base, pre_data, state, args.steps, args.batch_size, warmup=3)
        otf_sps = run(otf_cfg, otf_data, state, args.steps, args.batch_size, warmup=3)
    device = "cuda" if torch.cuda.is_available() else f"cpu ({torch.get_num_threads()} threads)"
    print(f"device: {device}; batch {args.batch_size} x {sample_size} samples ({frames} latent frames); "
          f"{args.steps} timed steps each")
    print(f"pre-encoded : {pre_sps:8.2f} steps/s")
    print(f"on-the-fly  : {otf_sps:8.2f} steps/s")
    print(f"ratio (pre-encoded / on-the-fly): {pre_sps / otf_sps:.2f}x")


if __name__ == "__main__":
    main()
