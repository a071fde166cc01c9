"""Build models from configs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .autoencoder import AudioAutoencoder
from .bottlenecks import build_bottleneck
from .config import AutoencoderConfig, load_autoencoder_config
from .oobleck import OobleckDecoder, OobleckEncoder


def build_autoencoder(config: AutoencoderConfig | dict[str, Any] | str | Path) -> AudioAutoencoder:
    """Build an autoencoder with freshly initialised weights from a validated config.

    Args:
        config: an :class:`AutoencoderConfig`, a parsed JSON dict, or the path of a JSON file.

    Raises:
        ConfigError: the config has problems (all of them are listed).
    """
    if not isinstance(config, AutoencoderConfig):
        config = load_autoencoder_config(config)
    encoder = OobleckEncoder(config.encoder)
    decoder = OobleckDecoder(config.decoder)
    bottleneck = build_bottleneck(config.bottleneck)
    return AudioAutoencoder(config, encoder, decoder, bottleneck)
