#!/usr/bin/env python3
"""Pre-encode an audio dataset to autoencoder latents (the stable-audio-tools command, same flags).

Example:
    python3 ./pre_encode.py --model-config vae_config.json --ckpt-path vae_model.ckpt \
        --dataset-config dataset.json --output-path latents/ --sample-size 1320960
"""

import sys

from preencode.cli import run_guarded, setup_logging
from preencode.encode.engine.main import encode_main

if __name__ == "__main__":
    debug = "--debug" in sys.argv
    setup_logging(debug)
    sys.exit(run_guarded(lambda argv: encode_main(argv, prog="pre_encode.py"),
                         [a for a in sys.argv[1:] if a != "--debug"], debug))
