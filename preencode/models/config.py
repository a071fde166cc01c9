"""Autoencoder configs in stable-audio-tools' format, parsed into typed objects and validated.

The whole config is checked before anything is built; every problem is reported at once with its
JSON path (``model.encoder.config.strides: expected a list of integers, got "4"``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..schema import Node, Problems, load_json
from .bottleneck_config import BottleneckConfig, DacRvqSettings, parse_bottleneck

ENCODER_TYPES = ("oobleck",)
DECODER_TYPES = ("oobleck",)

# Top-level sections that matter for training only; accepted and ignored.
_IGNORED_TOP_LEVEL = ("training", "sample_size", "demo")


@dataclass(frozen=True)
class OobleckConfig:
    """Settings of an Oobleck encoder or decoder (``model.encoder.config``/``model.decoder.config``).

    ``io_channels`` is ``in_channels`` for an encoder and ``out_channels`` for a decoder.
    """

    io_channels: int = 2
    channels: int = 128
    c_mults: tuple[int, ...] = (1, 2, 4, 8)
    strides: tuple[int, ...] = (2, 4, 8, 8)
    latent_dim: int = 32
    use_snake: bool = False
    antialias_activation: bool = False
    final_tanh: bool = True
    use_nearest_upsample: bool = False

    @property
    def hop(self) -> int:
        return math.prod(self.strides)

    @property
    def widths(self) -> list[int]:
        """Channel widths per stage, ``[channels * m for m in [1] + c_mults]``."""
        return [self.channels * m for m in (1, *self.c_mults)]


@dataclass(frozen=True)
class AutoencoderConfig:
    """A validated autoencoder config. ``raw`` keeps the JSON exactly as given (stored with the output)."""

    sample_rate: int
    io_channels: int
    latent_dim: int
    downsampling_ratio: int
    encoder: OobleckConfig
    decoder: OobleckConfig
    bottleneck: BottleneckConfig
    in_channels: int
    out_channels: int
    audio_channels: int
    encoder_type: str = "oobleck"
    decoder_type: str = "oobleck"
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


def parse_autoencoder_config(data: Any, source: str = "model config") -> AutoencoderConfig:
    """Validate a parsed autoencoder config; raises :class:`ConfigError` listing every problem."""
    problems = Problems()
    root = Node(data, "", problems)
    model_type = root.str("model_type")
    if isinstance(model_type, str) and model_type and model_type != "autoencoder":
        hint = (" For a diffusion model, pass its autoencoder config (the 'pretransform.config' section "
                "wrapped as an autoencoder config) instead.") if model_type.startswith("diffusion") else ""
        root.problem("model_type", f"expected \"autoencoder\", got {model_type!r}.{hint}")
    sample_rate = root.int("sample_rate", minimum=1)
    audio_channels = root.int("audio_channels", None, minimum=1)
    for key in _IGNORED_TOP_LEVEL:
        root.raw(key, None)

    model = root.obj("model") or Node({}, "model", problems)
    latent_dim = model.int("latent_dim", minimum=1)
    ratio = model.int("downsampling_ratio", minimum=1)
    io_channels = model.int("io_channels", minimum=1)
    in_channels = model.int("in_channels", None, minimum=1)
    out_channels = model.int("out_channels", None, minimum=1)
    bottleneck = parse_bottleneck(model.obj("bottleneck", required=False))
    encoder_type, encoder = _parse_coder(model.obj("encoder"), "encoder", ENCODER_TYPES)
    decoder_type, decoder = _parse_coder(model.obj("decoder"), "decoder", DECODER_TYPES)
    if model.has("pretransform"):
        model.raw("pretransform")
        model.problem("pretransform", "nested pretransforms inside an autoencoder are not supported")
    model.check_unknown()

    in_channels = in_channels or io_channels
    out_channels = out_channels or io_channels
    if audio_channels is None:
        audio_channels = io_channels
    if not problems:
        _check_consistency(model, encoder, decoder, bottleneck, latent_dim, ratio, in_channels, out_channels)
    problems.raise_if_any(source)
    return AutoencoderConfig(
        sample_rate=sample_rate, io_channels=io_channels, latent_dim=latent_dim, downsampling_ratio=ratio,
        encoder=encoder, decoder=decoder, bottleneck=bottleneck, in_channels=in_channels,
        out_channels=out_channels, audio_channels=audio_channels, encoder_type=encoder_type,
        decoder_type=decoder_type, raw=data,
    )


def _parse_coder(node: Node | None, role: str, types: tuple[str, ...]) -> tuple[str, OobleckConfig]:
    if node is None:
        return "oobleck", OobleckConfig()
    kind = node.choice("type", types, what=f"{role} type")
    node.bool("requires_grad", True)
    cfg = node.obj("config") or Node({}, f"{node.path}.config", node.problems)
    node.check_unknown()
    if kind is None:
        return "oobleck", OobleckConfig()
    io_key = "in_channels" if role == "encoder" else "out_channels"
    defaults = OobleckConfig()
    parsed = OobleckConfig(
        io_channels=cfg.int(io_key, 2, minimum=1),
        channels=cfg.int("channels", defaults.channels, minimum=1),
        c_mults=tuple(cfg.int_list("c_mults", list(defaults.c_mults), minimum=1)),
        strides=tuple(cfg.int_list("strides", list(defaults.strides), minimum=1)),
        latent_dim=cfg.int("latent_dim", defaults.latent_dim, minimum=1),
        use_snake=cfg.bool("use_snake", False),
        antialias_activation=cfg.bool("antialias_activation", False),
        final_tanh=cfg.bool("final_tanh", True) if role == "decoder" else True,
        use_nearest_upsample=cfg.bool("use_nearest_upsample", False) if role == "decoder" else False,
    )
    if parsed.antialias_activation:
        cfg.problem("antialias_activation", "true is not supported (anti-aliased activations are not "
                    "implemented); set it to false")
    if cfg.valid("strides") and cfg.valid("c_mults") and len(parsed.c_mults) != len(parsed.strides):
        cfg.problem("strides", f"expected as many strides as c_mults ({len(parsed.c_mults)}), "
                    f"got {len(parsed.strides)}")
    if cfg.valid("strides") and not parsed.strides:
        cfg.problem("strides", "expected at least one stride")
    cfg.check_unknown()
    return kind, parsed


def _check_consistency(model: Node, enc: OobleckConfig, dec: OobleckConfig, bottleneck: BottleneckConfig,
                       latent_dim: int, ratio: int, in_channels: int, out_channels: int) -> None:
    if enc.hop != ratio:
        model.problem("downsampling_ratio", f"expected the product of model.encoder.config.strides "
                      f"{list(enc.strides)} = {enc.hop}, got {ratio}")
    if dec.hop != ratio:
        model.problem("decoder.config.strides", f"expected strides whose product is the downsampling_ratio "
                      f"{ratio}, got {list(dec.strides)} (product {dec.hop})")
    if bottleneck.type == "vae":
        expected, why = 2 * latent_dim, "2 x latent_dim for a vae bottleneck (mean and scale)"
    elif isinstance(bottleneck.settings, DacRvqSettings):
        expected, why = bottleneck.settings.input_dim, "the dac_rvq bottleneck's input_dim"
    else:
        expected, why = latent_dim, "latent_dim"
    if enc.latent_dim != expected:
        model.problem("encoder.config.latent_dim", f"expected {expected} ({why}), got {enc.latent_dim}")
    if dec.latent_dim != latent_dim:
        model.problem("decoder.config.latent_dim", f"expected the model latent_dim {latent_dim}, "
                      f"got {dec.latent_dim}")
    if enc.io_channels != in_channels:
        model.problem("encoder.config.in_channels", f"expected {in_channels} (the model's input channels), "
                      f"got {enc.io_channels}")
    if dec.io_channels != out_channels:
        model.problem("decoder.config.out_channels", f"expected {out_channels} (the model's output channels), "
                      f"got {dec.io_channels}")


def load_autoencoder_config(path_or_dict: str | Path | dict) -> AutoencoderConfig:
    """Parse an autoencoder config from a JSON file path or an already parsed dict."""
    if isinstance(path_or_dict, dict):
        return parse_autoencoder_config(path_or_dict)
    return parse_autoencoder_config(load_json(path_or_dict, "Model config"), source=str(path_or_dict))
