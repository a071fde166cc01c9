"""Run the demo: pre-encode ``demo_data/`` with the bundled tiny autoencoder and show what was written.

Usage: python -m preencode.demo [demo_data_folder] [output_folder]
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


def main() -> int:
    data = Path(sys.argv[1] if len(sys.argv) > 1 else "demo_data")
    output = Path(sys.argv[2] if len(sys.argv) > 2 else "demo_output")
    argv = ["--model-config", str(DEMO_CONFIG), "--ckpt-path", str(DEMO_CKPT),
            "--dataset-config", str(data / "dataset.json"), "--output-path", str(output),
            "--sample-size", "262144", "--batch-size", "2", "--num-workers", "2", "--posterior", "mean"]
    print("Running: preencode encode " + " ".join(argv), flush=True)
    code = cli(argv, command="encode")
    if code in (0, 3):
        show(output)
        print("\n$ preencode inspect " + str(output), flush=True)
        cli(["inspect", str(output)])
        print("\n$ preencode verify " + str(output), flush=True)
        cli(["verify", str(output)])
    return code


if __name__ == "__main__":
    sys.exit(main())
