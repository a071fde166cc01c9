"""Write the bundled demo checkpoint: Stable Audio Open's VAE structure, 6 base channels, seeded random weights.

The weights are deterministic random values, not a trained model: the demo shows the pipeline, not
audio quality. Usage: python scripts/make_demo_checkpoint.py [out.ckpt]
"""

import sys
from pathlib import Path

import torch

from preencode.models.factory import build_autoencoder

HERE = Path(__file__).resolve().parents[1] / "preencode" / "demo"


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "tiny_vae.ckpt"
    torch.manual_seed(2024)
    model = build_autoencoder(HERE / "tiny_vae.json")
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(("alpha", "beta")):
                p.normal_(0.0, 0.2)
    torch.save({"state_dict": model.state_dict()}, out)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
