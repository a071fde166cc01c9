"""preencode: pre-encode audio datasets into autoencoder latents and train latent diffusion on them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["__version__", "load_autoencoder", "load_diffusion_model"]

if TYPE_CHECKING:  # pragma: no cover
    from .models.checkpoint import load_autoencoder
    from .models.diffusion.checkpoint import load_diffusion_model


def __getattr__(name: str) -> Any:
    # Lazy, so that `import preencode` (e.g. for the CLI's --help) does not import torch.
    if name == "load_autoencoder":
        from .models.checkpoint import load_autoencoder

        return load_autoencoder
    if name == "load_diffusion_model":
        from .models.diffusion.checkpoint import load_diffusion_model

        return load_diffusion_model
    raise AttributeError(f"module 'preencode' has no attribute {name!r}")
