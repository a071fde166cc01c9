"""The demo's second half: fine-tune the bundled tiny model on pre-encoded demo latents, unwrap, generate.

The same steps a user runs with Stable Audio Open (``docs/training.md``), on the bundled files:

1. the model's files as a user has them: ``model_config.json`` + ``model.safetensors`` (:func:`write_model_files`);
2. a ``pre_encoded`` dataset config over the latents, with a custom metadata module adding the prompts;
3. ``train`` from the model's weights (``--pretrained-ckpt-path``) for a few dozen steps;
4. ``unwrap`` the last training checkpoint;
5. ``generate`` one clip from a prompt with the unwrapped files.
"""

from __future__ import annotations

import csv
import json
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import DEMO_MODEL_CKPT, DEMO_MODEL_CONFIG, DEMO_PROMPTS, DEMO_T5, T5_PLACEHOLDER

log = logging.getLogger(__name__)
DEMO_PROMPT = "a warm major chord on a soft synth pad"


@dataclass
class FinetuneResult:
    """Where the demo fine-tune put its results."""

    model_config: Path  # the model files a user starts from
    model_ckpt: Path
    dataset_config: Path
    checkpoint: Path  # the last training checkpoint
    unwrapped: list[Path]  # .ckpt, .safetensors, .json
    audio: Path  # the generated clip
    losses: list[float] = field(default_factory=list)  # train/loss of every step
    commands: list[str] = field(default_factory=list)  # the equivalent command lines


def demo_model_config() -> dict[str, Any]:
    """The bundled model config with its T5 pointing at the bundled tiny T5 (wherever it is installed)."""
    text = DEMO_MODEL_CONFIG.read_text(encoding="utf-8")
    return json.loads(text.replace(json.dumps(T5_PLACEHOLDER), json.dumps(str(DEMO_T5))))


def write_model_files(folder: str | Path) -> tuple[Path, Path]:
    """``<folder>/model_config.json`` and ``<folder>/model.safetensors``: the bundled model as released models
    come (Stable Audio Open's two files). Returns their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config, ckpt = folder / "model_config.json", folder / "model.safetensors"
    config.write_text(json.dumps(demo_model_config(), indent=2) + "\n", encoding="utf-8")
    shutil.copyfile(DEMO_MODEL_CKPT, ckpt)
    return config, ckpt


def write_dataset_config(latents: str | Path, path: str | Path, crop_frames: int | None = None) -> Path:
    """A ``pre_encoded`` dataset config over ``latents`` whose prompts come from the demo's metadata module."""
    config: dict[str, Any] = {"dataset_type": "pre_encoded", "random_crop": False, "drop_last": False,
                              "datasets": [{"id": "demo", "path": str(Path(latents).resolve()),
                                            "custom_metadata_module": str(DEMO_PROMPTS)}]}
    if crop_frames is not None:
        config["latent_crop_length"] = crop_frames
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return path


def read_losses(save_dir: str | Path) -> list[float]:
    """``train/loss`` of every logged step of the latest run under ``save_dir`` (``--logger csv``)."""
    runs = sorted(Path(save_dir).glob("csv/version_*/metrics.csv"), key=lambda p: int(p.parent.name.split("_")[1]))
    if not runs:
        return []
    with open(runs[-1], newline="", encoding="utf-8") as f:
        return [float(r["train/loss"]) for r in csv.DictReader(f) if r.get("train/loss")]


def finetune_demo(latents: str | Path, out_dir: str | Path, *, steps: int = 40, batch_size: int = 4,
                  generate_steps: int = 20, seconds: float = 4.0, prompt: str = DEMO_PROMPT,
                  seed: int = 0, threads: int | None = 1) -> FinetuneResult:
    """Fine-tune the bundled model on the pre-encoded ``latents`` folder for ``steps`` steps, unwrap it and
    generate one ``seconds``-long clip from ``prompt``; everything is written under ``out_dir``.

    ``threads``: PyTorch threads meanwhile (restored after; None keeps the setting). The tiny model's matrices
    are too small to gain from more than one, and several threads stall when other work shares the cores
    (measured on 2 busy cores: 25 s with one thread, 84 s with two).

    Raises:
        UserError: e.g. latents that were not encoded with the demo model's pretransform.
    """
    import torch

    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _finetune(Path(latents), Path(out_dir), steps, batch_size, generate_steps, seconds, prompt, seed)
    finally:
        torch.set_num_threads(previous)


def _finetune(latents: Path, out: Path, steps: int, batch_size: int, generate_steps: int, seconds: float,
              prompt: str, seed: int) -> FinetuneResult:
    from ..generate.options import GenerateOptions
    from ..generate.run import generate
    from ..train.run import TrainOptions, train
    from ..train.unwrap import unwrap_checkpoint

    config, ckpt = write_model_files(out / "model")
    data = write_dataset_config(latents, out / "dataset.json",
                                crop_frames=demo_model_config()["sample_size"] // 2048)
    run_dir = out / "run"
    opts = TrainOptions(model_config=str(config), dataset_config=str(data), save_dir=str(run_dir),
                        pretrained_ckpt_path=str(ckpt), batch_size=batch_size, num_workers=0, max_steps=steps,
                        checkpoint_every=max(steps, 1), logger="csv", seed=seed)
    last = train(opts)
    unwrapped = unwrap_checkpoint(last, out / "finetuned" / "model")
    wav = out / "generated.wav"
    (audio,) = generate(GenerateOptions(model_config=str(unwrapped[2]), ckpt_path=str(unwrapped[1]), prompt=prompt,
                                        seconds_total=seconds, steps=generate_steps, seed=seed, output=str(wav),
                                        device="cpu", overwrite=True))
    commands = [
        (f"preencode train --model-config {config} --dataset-config {data} --pretrained-ckpt-path {ckpt} "
        f"--save-dir {run_dir} --batch-size {batch_size} --max-steps {steps}"),
        f"preencode unwrap --ckpt-path {last} --output {out / 'finetuned' / 'model'}",
        (f"preencode generate --model-config {unwrapped[2]} --ckpt-path {unwrapped[1]} --prompt \"{prompt}\" "
        f"--seconds-total {seconds:g} --steps {generate_steps} --seed {seed} --output {wav}"),
    ]
    return FinetuneResult(config, ckpt, data, last, unwrapped, audio, read_losses(run_dir), commands)
