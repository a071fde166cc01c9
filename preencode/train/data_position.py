"""Where training is in a streamed dataset, as a checkpoint saves it: the batches trained on, not fetched.

Lightning saves a train dataloader's ``state_dict()`` in its checkpoints and restores it with
``load_state_dict()`` on ``--ckpt-path``; :class:`~preencode.data.latent_shards.LatentStreamLoader` has both.
Lightning also fetches one batch ahead of the step that trains on it, so a position counted when a batch is
fetched would skip that batch on resume: :class:`StreamPosition` counts each batch when its step starts.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch

from ..data.latent_shards import LatentStreamLoader


class StreamPosition(L.Callback):
    """Counts the batches of ``loader`` as they are trained on (any other loader: does nothing)."""

    def __init__(self, loader: torch.utils.data.DataLoader) -> None:
        self.loader = loader if isinstance(loader, LatentStreamLoader) else None
        if self.loader is not None:
            self.loader.count_on_yield = False

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        if self.loader is not None:
            self.loader.trained()
