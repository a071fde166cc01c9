"""Conditioners: metadata values -> embeddings ``(tokens [B, S, cond_dim], mask bool [B, S])``.

``number`` embeds a float (clamped to ``[min_val, max_val]`` and normalised) with learned Fourier
features; ``t5`` runs a frozen T5 encoder from ``transformers``, loaded only from a local folder or the
local Hugging Face cache (nothing is downloaded).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

import torch
from torch import nn

from ..errors import UserError
from .config import ConditionerConfig, ConditioningConfig

log = logging.getLogger(__name__)

Conditioning = dict[str, tuple[torch.Tensor, torch.Tensor]]


class NumberConditioner(nn.Module):
    """A float per sample -> one token ``[B, 1, dim]``."""

    def __init__(self, dim: int, min_val: float, max_val: float) -> None:
        super().__init__()
        self.min_val, self.max_val = min_val, max_val
        self.weights = nn.Parameter(torch.randn(dim // 2))  # learned Fourier frequencies
        self.proj = nn.Linear(dim // 2 * 2 + 1, dim)

    def forward(self, values: list, device: torch.device | str) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.tensor([float(v) for v in values], device=device).clamp(self.min_val, self.max_val)
        x = ((x - self.min_val) / (self.max_val - self.min_val))[:, None]
        freqs = x * self.weights[None] * 2 * math.pi
        emb = self.proj(torch.cat([x, freqs.sin(), freqs.cos()], dim=-1))
        return emb[:, None, :], torch.ones(len(values), 1, dtype=torch.bool, device=device)


class T5Conditioner(nn.Module):
    """A frozen T5 encoder; its weights are not part of the state dict (as in the reference)."""

    def __init__(self, dim: int, model_name: str, max_length: int, project_out: bool) -> None:
        super().__init__()
        try:
            from transformers import AutoTokenizer, T5EncoderModel
        except ImportError as err:
            raise UserError("The t5 conditioner needs the 'transformers' package.",
                            "Install it with: pip install transformers") from err
        try:
            tokenizer = AutoTokenizer.from_pretrained(model_name, local_files_only=True)
            encoder = T5EncoderModel.from_pretrained(model_name, local_files_only=True)
        except OSError as err:
            raise UserError(f"T5 model {model_name!r} is neither a local folder nor in the local Hugging Face cache.",
                            "Download it once (e.g. huggingface-cli download) or set t5_model_name to a folder.") from err
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.__dict__["encoder"] = encoder.eval().requires_grad_(False)  # kept out of state_dict and optimizer
        width = encoder.config.d_model
        self.proj = nn.Linear(width, dim) if (width != dim or project_out) else nn.Identity()

    def forward(self, texts: list, device: torch.device | str) -> tuple[torch.Tensor, torch.Tensor]:
        encoded = self.tokenizer([str(t) for t in texts], truncation=True, max_length=self.max_length,
                                 padding="max_length", return_tensors="pt")
        ids = encoded["input_ids"].to(device)
        mask = encoded["attention_mask"].to(device).bool()
        self.encoder.to(device)
        with torch.no_grad():
            hidden = self.encoder(input_ids=ids, attention_mask=mask).last_hidden_state.float()
        emb = self.proj(hidden) * mask[..., None]
        return emb, mask


_BUILDERS: dict[str, Callable[[ConditionerConfig, int], nn.Module]] = {
    "number": lambda c, dim: NumberConditioner(dim, c.min_val, c.max_val),
    "t5": lambda c, dim: T5Conditioner(dim, c.t5_model_name, c.max_length, c.project_out),
}


class MultiConditioner(nn.Module):
    """Applies each conditioner to its metadata key (the conditioner's id)."""

    def __init__(self, config: ConditioningConfig | None) -> None:
        super().__init__()
        self.conditioners = nn.ModuleDict()
        for cc in config.configs if config else ():
            self.conditioners[cc.id] = _BUILDERS[cc.type](cc, config.cond_dim)  # type: ignore[union-attr]

    def forward(self, infos: list[dict], device: torch.device | str) -> Conditioning:
        """Raises UserError when a sample's metadata lacks a conditioner's key."""
        out: Conditioning = {}
        for key, conditioner in self.conditioners.items():
            values = []
            for info in infos:
                if key not in info:
                    raise UserError(f"Conditioner {key!r} needs the metadata field {key!r}, missing in "
                                    f"{info.get('latent_filename', info.get('path', 'a sample'))}.",
                                    "Add it to the metadata (e.g. with a custom_metadata_module).")
                value = info[key]
                values.append(value[0] if isinstance(value, (list, tuple)) and len(value) == 1 else value)
            out[key] = conditioner(values, device)
        return out
