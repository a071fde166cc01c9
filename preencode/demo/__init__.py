"""The bundled demo: a tiny Stable Audio Open-shaped diffusion model with seeded random weights (not trained).

* ``tiny_sao.json`` + ``tiny_sao.safetensors``: the model config and its unwrapped weights (``model.*``,
  ``conditioner.*``, ``pretransform.*``), like Stable Audio Open's ``model_config.json`` + ``model.safetensors``;
  ``tiny_t5/`` is its local T5 (a word-level tokenizer over a small music vocabulary, a 1-layer encoder).
* ``tiny_vae.json``: the autoencoder part of the config on its own (Stable Audio Open's VAE structure, 6 base
  channels); with ``tiny_sao.safetensors`` as its checkpoint it pre-encodes (the pretransform's tensors are taken).
* ``python -m preencode.demo`` pre-encodes the demo clips; :mod:`.finetune` fine-tunes the model on them and
  generates a clip. ``scripts/make_demo_model.py`` rewrites the model files.
"""

from pathlib import Path

DEMO_DIR = Path(__file__).resolve().parent
DEMO_CONFIG = DEMO_DIR / "tiny_vae.json"
DEMO_CKPT = DEMO_DIR / "tiny_sao.safetensors"
DEMO_MODEL_CONFIG = DEMO_DIR / "tiny_sao.json"
DEMO_MODEL_CKPT = DEMO_CKPT
DEMO_T5 = DEMO_DIR / "tiny_t5"
DEMO_PROMPTS = DEMO_DIR / "prompts.py"
T5_PLACEHOLDER = "preencode/demo/tiny_t5"
