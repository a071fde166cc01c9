"""The bundled demo: a tiny autoencoder (Stable Audio Open's VAE structure, 6 base channels, seeded random
weights, not trained) and ``python -m preencode.demo`` which pre-encodes the demo clips with it."""

from pathlib import Path

DEMO_DIR = Path(__file__).resolve().parent
DEMO_CONFIG = DEMO_DIR / "tiny_vae.json"
DEMO_CKPT = DEMO_DIR / "tiny_vae.ckpt"
