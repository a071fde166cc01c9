"""Train a latent diffusion model: ``python3 ./train.py --model-config ... --dataset-config ... --save-dir ...``.

The same as ``preencode train``; see ``python3 ./train.py --help``.
"""

import sys

from preencode.cli import main

if __name__ == "__main__":
    sys.exit(main(command="train", prog="train.py"))
