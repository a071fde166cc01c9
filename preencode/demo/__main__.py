"""Run the demo: pre-encode ``demo_data/`` with the bundled tiny model's autoencoder, show what was written,
then fine-tune the bundled tiny Stable Audio Open-shaped model on those latents and generate a clip.

Usage: python -m preencode.demo [demo_data_folder] [output_folder] [finetune_folder]
"""

import json
import sys
from pathlib import Path

import numpy as np

from ..cli import main as cli
from ..store.names import DETAILS, FAILURES, MANIFEST
from . import DEMO_CKPT, DEMO_CONFIG


def show(output: Path) -> None:
    latents = sorted(output.glob("*/*.npy"))
    print(f"\nOutput: {output.resolve()}")
    print(f"  {DETAILS}, {MANIFEST}, {FAILURES} and {len(latents)} latents (+ .json metadata):")
    for path in latents:
        meta = json.loads(path.with_suffix(".json").read_text())
        z = np.load(path)
        valid = sum(meta["padding_mask"])
        print(f"  {path.relative_to(output)}  {z.dtype}{list(z.shape)}  {valid} valid frames  "
              f"<- {meta['relpath']} ({meta['seconds_total']} s)")


def finetune(latents: Path, folder: Path) -> None:
    """The second half: fine-tune, unwrap, generate (once; a re-run shows what the first run wrote)."""
    if folder.exists():
        print(f"\n{folder}/ exists from an earlier demo run: the fine-tune is not repeated (make clean runs it "
              "again).")
        return
    from .finetune import finetune_demo

    print("\nFine-tuning the bundled tiny Stable Audio Open-shaped model on these latents "
          "(train --pretrained-ckpt-path, unwrap, generate):", flush=True)
    result = finetune_demo(latents, folder)
    if result.losses:
        first, last = result.losses[:5], result.losses[-5:]
        print(f"  {len(result.losses)} steps, loss {sum(first) / len(first):.3f} -> {sum(last) / len(last):.3f} "
              "(mean of the first and last five)")
    print(f"  model files (as released models come): {result.model_config}, {result.model_ckpt}")
    print(f"  training checkpoint: {result.checkpoint}")
    print(f"  unwrapped model: {', '.join(str(p) for p in result.unwrapped)}")
    print(f"  generated clip: {result.audio}")
    print("\nThe same steps as commands:")
    for command in result.commands:
        print(f"  {command}")


NEXT_STEPS = """
Next, on your own data (README.md, "Your own data"):
  1. a dataset config for your folder, e.g. my_dataset.json:
       {"dataset_type": "audio_dir", "datasets": [{"id": "mine", "path": "/path/to/your/audio"}],
        "random_crop": false}
  2. preencode encode --model-config vae_config.json --ckpt-path vae_model.ckpt \\
         --dataset-config my_dataset.json --output-path my_latents
  3. preencode inspect my_latents      # the suggested scale for your diffusion model's config
  4. preencode verify my_latents       # every input encoded, failed or rejected, nothing damaged
  5. preencode decode my_latents/0/0000000000000.npy --ckpt-path vae_model.ckpt -o first.wav
  6. fine-tune Stable Audio Open on them: the section "Fine-tune Stable Audio Open" of README.md"""


def encode_argv(data: Path, output: Path) -> list[str]:
    """The flags of the demo's ``preencode encode``."""
    return ["--model-config", str(DEMO_CONFIG), "--ckpt-path", str(DEMO_CKPT),
            "--dataset-config", str(data / "dataset.json"), "--output-path", str(output),
            "--sample-size", "262144", "--batch-size", "2", "--num-workers", "2", "--posterior", "mean"]


def main() -> int:
    data = Path(sys.argv[1] if len(sys.argv) > 1 else "demo_data")
    output = Path(sys.argv[2] if len(sys.argv) > 2 else "demo_output")
    finetuned = Path(sys.argv[3] if len(sys.argv) > 3 else "demo_finetune")
    argv = encode_argv(data, output)
    print("Running: preencode encode " + " ".join(argv), flush=True)
    code = cli(argv, command="encode")
    if code in (0, 3):
        show(output)
        print("\n$ preencode inspect " + str(output), flush=True)
        cli(["inspect", str(output)])
        print("\n$ preencode verify " + str(output), flush=True)
        cli(["verify", str(output)])
        finetune(output, finetuned)
        print(NEXT_STEPS, flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
