"""Train a latent diffusion model: ``python3 ./train.py --model-config ... --dataset-config ... --save-dir ...``."""

import sys

from preencode.train.cli import train_main

if __name__ == "__main__":
    sys.exit(train_main())
