"""Encoding zero-padded windows without spending compute on the padding.

A window ``[C, S]`` holds ``n`` samples of audio followed by zeros. Its pre-bottleneck output equals
encoding the full window, but only ``audio[:, :M]`` is encoded, with ``M`` a little past ``n``; the
frames after that come from the output of an all-zero window of length ``S``.

Why this is exact (latent frame ``j`` reads input samples ``[j*hop - left, j*hop + right]``, see
:mod:`.receptive_field`):

* Frame ``j`` of the truncated input equals the full window's when ``j*hop + right < M``: it never
  reaches the truncated input's right edge, where the encoder pads with zeros instead of continuing
  with the (non-zero, because of biases) activations of zero input.
* Frame ``j`` of the full window equals frame ``j`` of an all-zero window of the same length when
  ``j*hop - left >= n``: both read identical inputs over the frame's receptive field, right edge
  included.

``M`` is chosen so that every frame falls into one of the two cases. The all-zero window's output
is itself built from a short zero window: frames that reach neither edge are all the same.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from ...models.autoencoder import AudioAutoencoder
from .receptive_field import receptive_field

log = logging.getLogger(__name__)


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


class PaddingSkipper:
    """Encodes batches of zero-padded windows, skipping the padding; holds per-run caches.

    Create one per run (per model); call :meth:`encode_pre_bottleneck` per batch.

    Args:
        model: the autoencoder (its ``encoder`` may be optimised, see :mod:`.encoder`).
        encoder: what to run on audio ``[B, C, T] -> [B, C_enc, T // hop]``; defaults to
            ``model.encode_pre_bottleneck``.
        check_padding: verify that samples past each content length are zero (cheap next to
            encoding); a window padded otherwise would be encoded wrongly.
    """

    def __init__(self, model: AudioAutoencoder, encoder: Callable[[Tensor], Tensor] | None = None,
                 check_padding: bool = True) -> None:
        self.model = model
        self.encoder = encoder or model.encode_pre_bottleneck
        self.check_padding = check_padding
        self.hop = model.downsampling_ratio
        self.left, self.right = receptive_field(model.config.encoder)
        self._zero_cache: dict[tuple[int, torch.dtype, torch.device], Tensor] = {}
        self.encoded_samples = 0  # statistics: samples actually encoded vs. windows' total
        self.window_samples = 0

    def encode_length(self, content: int, window: int) -> int:
        """Samples to encode, a multiple of ``hop`` in ``[0, window]``, for ``content`` samples of audio."""
        if content <= 0:
            return 0
        frames = window // self.hop
        first_after = _ceil_div(content + self.left, self.hop)  # first frame that sees no audio
        if first_after >= frames:
            return window
        needed = (first_after - 1) * self.hop + self.right + 1
        return min(window, _ceil_div(needed, self.hop) * self.hop)

    def exact_frames(self, encoded: int, window: int) -> int:
        """Leading frames of an ``encoded``-sample truncation that equal the full window's."""
        if encoded >= window:
            return window // self.hop
        return max(0, (encoded - 1 - self.right) // self.hop + 1)

    def zero_window(self, window: int, dtype: torch.dtype, device: torch.device) -> Tensor:
        """Pre-bottleneck output of an all-zero window ``[C_enc, window // hop]`` (cached)."""
        key = (window, dtype, device)
        if key not in self._zero_cache:
            self._zero_cache[key] = self._compute_zero_window(window, dtype, device)
        return self._zero_cache[key]

    def _compute_zero_window(self, window: int, dtype: torch.dtype, device: torch.device) -> Tensor:
        frames = window // self.hop
        n_left = _ceil_div(self.left, self.hop)  # frames that reach the left edge
        n_right = self.right // self.hop  # frames that reach the right edge
        short = n_left + n_right + 1
        channels = self.model.in_channels
        if frames <= short:
            return self.encoder(torch.zeros(1, channels, window, dtype=dtype, device=device))[0]
        out = self.encoder(torch.zeros(1, channels, short * self.hop, dtype=dtype, device=device))[0]
        middle = out[:, n_left:n_left + 1].expand(-1, frames - n_left - n_right)
        return torch.cat([out[:, :n_left], middle, out[:, short - n_right:]], dim=1)

    def encode_pre_bottleneck(self, audio: Tensor, lengths: Sequence[int] | Tensor) -> Tensor:
        """Pre-bottleneck output of zero-padded windows, as if each were encoded in full.

        Args:
            audio: ``[B, C, S]``, S a multiple of ``hop``; zero past each item's length.
            lengths: ``[B]`` samples of real audio per item (clipped to ``[0, S]``).

        Returns:
            ``[B, C_enc, S // hop]``.

        Raises:
            ValueError: wrong shapes, or non-zero samples past a length (with ``check_padding``).
        """
        batch, _, window = audio.shape
        if isinstance(lengths, Tensor):
            lengths = lengths.tolist()
        lengths = [min(max(int(n), 0), window) for n in lengths]
        if len(lengths) != batch:
            raise ValueError(f"expected {batch} lengths, got {len(lengths)}")
        if window % self.hop:
            raise ValueError(f"window length {window} is not a multiple of the downsampling ratio {self.hop}")
        if self.check_padding:
            self._check_zero_padding(audio, lengths)
        encoded = max(self.encode_length(n, window) for n in lengths)
        self.encoded_samples += encoded * batch
        self.window_samples += window * batch
        if encoded >= window:
            return self.encoder(audio)
        dtype = self.model.dtype
        zero = self.zero_window(window, dtype, audio.device)
        out = zero.unsqueeze(0).repeat(batch, 1, 1)
        if encoded > 0:
            exact = self.exact_frames(encoded, window)
            out[:, :, :exact] = self.encoder(audio[:, :, :encoded])[:, :, :exact]
        return out

    def __call__(self, model: AudioAutoencoder, audio: Tensor, lengths: Sequence[int] | Tensor) -> Tensor:
        """The engine's ``pre_bottleneck_fn(model, audio, lengths)`` hook; ``model`` must be this one's."""
        if model is not self.model:
            raise ValueError("this PaddingSkipper was made for another model")
        return self.encode_pre_bottleneck(audio, lengths)

    @staticmethod
    def _check_zero_padding(audio: Tensor, lengths: list[int]) -> None:
        for i, n in enumerate(lengths):
            if n < audio.shape[-1] and torch.count_nonzero(audio[i, :, n:]).item():
                raise ValueError(f"batch item {i}: samples after its length {n} are not zero; padding "
                                 "can only be skipped for zero-padded windows")

    @property
    def skipped_fraction(self) -> float:
        """Fraction of window samples not encoded so far."""
        return 1.0 - self.encoded_samples / self.window_samples if self.window_samples else 0.0
