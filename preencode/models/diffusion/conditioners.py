"""Conditioners: per-sample metadata values -> ``(embeddings [B, S, cond_dim], mask [B, S])``.

Layouts and numbers are stable-audio-tools': ``number`` (a float clamped to ``[min_val, max_val]``,
normalised to [0, 1], embedded with learned Fourier features: ``embedder.embedding.0.weights`` and
``embedder.embedding.1``), ``int`` (a lookup table indexed by the clamped value), ``list`` (a lookup
table over the listed options, 0 for anything else) and ``t5`` (:mod:`.t5`). Single-token conditioners
return a float mask of ones ``[B, 1]``, t5 a boolean one, as the reference does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from ...errors import UserError
from .config import ConditionerConfig, ConditioningConfig
from .t5 import T5Conditioner

Conditioning = dict[str, tuple[Tensor, Tensor | None]]


class FourierEmbedding(nn.Module):
    """``x [B]`` -> ``[B, 1 + dim]``: x, then sin and cos of ``2π x w`` with learned frequencies ``w``."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.weights = nn.Parameter(torch.randn(dim // 2))

    def forward(self, x: Tensor) -> Tensor:
        x = x[:, None]
        freqs = x * self.weights[None, :] * 2 * math.pi
        return torch.cat((x, freqs.sin(), freqs.cos()), dim=-1)


class NumberEmbedder(nn.Module):
    def __init__(self, features: int, dim: int = 256) -> None:
        super().__init__()
        self.features = features
        self.embedding = nn.Sequential(FourierEmbedding(dim), nn.Linear(dim + 1, features))

    def forward(self, x: Tensor) -> Tensor:
        return self.embedding(x.reshape(-1)).view(*x.shape, self.features)


class NumberConditioner(nn.Module):
    def __init__(self, output_dim: int, min_val: float = 0, max_val: float = 1) -> None:
        super().__init__()
        self.min_val, self.max_val = min_val, max_val
        self.embedder = NumberEmbedder(features=output_dim)

    def forward(self, values: list[Any], device: torch.device | str) -> tuple[Tensor, Tensor]:
        """Numbers -> ``([B, 1, output_dim], ones [B, 1])``."""
        floats = torch.tensor([_number(v) for v in values]).to(device).clamp(self.min_val, self.max_val)
        normalized = (floats - self.min_val) / (self.max_val - self.min_val)
        embeds = self.embedder(normalized.to(next(self.embedder.parameters()).dtype)).unsqueeze(1)
        return embeds, torch.ones(embeds.shape[0], 1).to(device)


class IntConditioner(nn.Module):
    def __init__(self, output_dim: int, min_val: int = 0, max_val: int = 512) -> None:
        super().__init__()
        self.min_val, self.max_val = min_val, max_val
        self.int_embedder = nn.Embedding(max_val - min_val + 1, output_dim)

    def forward(self, values: list[Any], device: torch.device | str) -> tuple[Tensor, Tensor]:
        """Integers -> ``([B, 1, output_dim], ones [B, 1])``; the clamped value is the table index."""
        ints = torch.tensor([_integer(v) for v in values]).to(device).clamp(self.min_val, self.max_val)
        embeds = self.int_embedder(ints).unsqueeze(1)
        return embeds, torch.ones(embeds.shape[0], 1).to(device)


class ListConditioner(nn.Module):
    def __init__(self, output_dim: int, options: Sequence[str]) -> None:
        super().__init__()
        self.options = list(options)
        self.embedder = nn.Embedding(len(self.options) + 1, output_dim)

    def forward(self, values: list[Any], device: torch.device | str) -> tuple[Tensor, Tensor]:
        """Option names -> ``([B, 1, output_dim], ones [B, 1])``; an unlisted value gets row 0."""
        ids = torch.tensor([self.options.index(v) + 1 if v in self.options else 0 for v in values]).to(device)
        embeds = self.embedder(ids).unsqueeze(1)
        return embeds, torch.ones(embeds.shape[0], 1).to(device)


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError) as err:
        raise UserError(f"A number conditioner got {value!r}, expected a number.",
                        "Check the metadata field it reads.") from err


def _integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
        raise UserError(f"An int conditioner got {value!r}, expected an integer.", "Check the metadata field it reads.")
    return int(value)


def build_conditioner(config: ConditionerConfig, cond_dim: int) -> nn.Module:
    """One conditioner from its validated config (a t5 encoder is not loaded yet)."""
    if config.type == "number":
        return NumberConditioner(cond_dim, config.min_val, config.max_val)
    if config.type == "int":
        return IntConditioner(cond_dim, int(config.min_val), int(config.max_val))
    if config.type == "list":
        return ListConditioner(cond_dim, config.options)
    if config.type == "t5":
        return T5Conditioner(cond_dim, config.t5_model_name, config.max_length, config.project_out)
    raise ValueError(f"unknown conditioner type {config.type!r}")  # prevented by config validation


class MultiConditioner(nn.Module):
    """Applies each conditioner to the metadata field named by its id (``conditioners.<id>``).

    A field missing from a sample is looked up under ``default_keys[id]``, per sample (the reference
    keeps using the default key for the rest of the batch once one sample lacks the field). Ids in
    ``pre_encoded_keys`` take tensors from the metadata as they are (stacked, mask None).
    """

    def __init__(self, config: ConditioningConfig) -> None:
        super().__init__()
        self.conditioners = nn.ModuleDict({c.id: build_conditioner(c, config.cond_dim) for c in config.configs})
        self.default_keys = dict(config.default_keys)
        self.pre_encoded_keys = tuple(config.pre_encoded_keys)

    def load(self) -> None:
        """Load the frozen encoders (t5) now rather than at the first call."""
        for conditioner in self.conditioners.values():
            if isinstance(conditioner, T5Conditioner):
                conditioner.load()

    def forward(self, metadata: Sequence[dict[str, Any]], device: torch.device | str) -> Conditioning:
        """``metadata``: one dict per sample -> ``{id: (embeddings [B, S, D], mask [B, S])}``.

        Raises:
            UserError: a sample lacks a conditioner's field.
        """
        out: Conditioning = {}
        for cid, conditioner in self.conditioners.items():
            values = [_field(sample, cid, self.default_keys.get(cid), i) for i, sample in enumerate(metadata)]
            if cid in self.pre_encoded_keys:
                out[cid] = (torch.stack([torch.as_tensor(v) for v in values], dim=0).to(device), None)
            else:
                out[cid] = conditioner(values, device)
        return out


def _field(sample: dict[str, Any], key: str, default_key: str | None, index: int) -> Any:
    if key not in sample and default_key is not None:
        key = default_key
    if key not in sample:
        where = sample.get("latent_filename") or sample.get("path") or f"sample {index}"
        raise UserError(f"The conditioner {key!r} needs the metadata field {key!r}, missing in {where}.",
                        "Add it to the metadata (e.g. with a custom_metadata_module).")
    value = sample[key]
    # Collate functions may wrap each value in a one-element list.
    return value[0] if isinstance(value, (list, tuple)) and len(value) == 1 else value
