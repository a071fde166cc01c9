#!/usr/bin/env python3
"""Pre-encode an audio dataset to autoencoder latents (the stable-audio-tools command, same flags).

Example:
    python3 ./pre_encode.py --model-config vae_config.json --ckpt-path vae_model.ckpt \
        --dataset-config dataset.json --output-path latents/ --sample-size 1320960

The same as ``preencode encode``; see ``python3 ./pre_encode.py --help``.
"""

import sys

from preencode.cli import main

if __name__ == "__main__":
    sys.exit(main(command="encode", prog="pre_encode.py"))
