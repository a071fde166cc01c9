"""The Lightning module that encodes batches: ``predict_step`` returns an :class:`EncodedBatch` for the writer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import lightning.pytorch as L
import numpy as np
import torch
from torch.nn import functional as F

from ...data.audio_windows import WindowBatch
from ...data.failures import Failure, Rejection
from ...models.autoencoder import AudioAutoencoder
from ...store.meta import LatentMeta, json_safe
from ...store.sample import EncodedSample
from ..full_length.stitch import Stitcher, predict_chunks
from ..full_length.stream import ChunkBatch
from ..posterior import NON_FINITE, bottleneck_outputs, non_finite_rows


@dataclass(frozen=True)
class EncodeSettings:
    posterior: str = "sample"
    seed: int = 0
    is_discrete: bool = False
    store_std: bool = False
    out_dtype: str = "float32"  # continuous latents on disk; tokens use the model's token dtype


@dataclass
class EncodedBatch:
    """What ``predict_step`` hands to the writer for one batch.

    Attributes:
        samples: the encoded inputs, ready to write (all finite).
        failures, rejections: the batch's inputs that gave no latent, with the reason (a non-finite
            encoding is a failure at stage ``encode``).
        audio_samples: samples of real audio the batch held (for the run's audio hours).
    """

    samples: list[EncodedSample] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    audio_samples: int = 0


def resize_mask(mask: torch.Tensor, frames: int) -> list[int]:
    """A sample-level padding mask ``[S]`` resized to ``frames`` by nearest neighbour (as the reference)."""
    resized = F.interpolate(mask[None, None].float(), size=frames, mode="nearest")
    return resized.flatten().int().tolist()


class EncodeModule(L.LightningModule):
    """Holds the frozen autoencoder; ``predict_step`` turns a collated batch into :class:`EncodedSample` s."""

    def __init__(self, model: AudioAutoencoder, settings: EncodeSettings, pre_bottleneck_fn: Any = None) -> None:
        super().__init__()
        self.model = model
        self.settings = settings
        # After a resume fewer inputs than ranks may be left: some ranks then have nothing to do.
        self.allow_zero_length_dataloader_with_multiple_devices = True
        # Optional faster replacement of model.encode_pre_bottleneck(audio, lengths) (padding skipping).
        self.pre_bottleneck_fn = pre_bottleneck_fn
        self.stitcher = Stitcher()  # --full-length: partial inputs whose chunks span batches

    def _pre_bottleneck(self, audio: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        if self.pre_bottleneck_fn is not None:
            return self.pre_bottleneck_fn(self.model, audio, lengths)
        return self.model.encode_pre_bottleneck(audio)

    @torch.inference_mode()
    def predict_step(self, batch: WindowBatch | ChunkBatch, batch_idx: int = 0) -> EncodedBatch:
        out = EncodedBatch(failures=list(batch.failures), rejections=batch.rejections,
                           audio_samples=batch.audio_samples)
        if isinstance(batch, ChunkBatch):
            out.samples, failures = predict_chunks(self.model, self.settings, self.stitcher, batch, self.device)
            out.failures += failures
        elif batch.audio is not None:
            out.samples = self._encode_windows(batch, out.failures)
        return out

    def _encode_windows(self, batch: WindowBatch, failures: list[Failure]) -> list[EncodedSample]:
        assert batch.audio is not None and batch.lengths is not None
        model = self.model
        audio = batch.audio.to(self.device, model.dtype, non_blocking=True)
        pre = self._pre_bottleneck(audio, batch.lengths)
        latents, std = bottleneck_outputs(model, self.settings, pre, batch.indices)
        bad = non_finite_rows(pre, latents, std)
        samples = []
        for row, (index, meta, mask) in enumerate(zip(batch.indices, batch.metadata, batch.padding_masks, strict=True)):
            if bad[row]:
                failures.append(Failure(str(meta.get("path")), "encode", NON_FINITE, index, meta.get("dataset_id")))
                continue
            meta = {**meta, "padding_mask": resize_mask(mask, latents.shape[-1])}
            samples.append(EncodedSample(index, np.ascontiguousarray(latents[row]),
                                         LatentMeta.from_dict(json_safe(meta)),
                                         None if std is None else np.ascontiguousarray(std[row])))
        return samples

    def configure_optimizers(self) -> None:
        return None
