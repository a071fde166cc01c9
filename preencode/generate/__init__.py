"""Generation with diffusion models: conditioning, sampling and decoding (:mod:`.sample`), and the
``preencode generate`` job that writes WAV files (:mod:`.run`)."""

from .run import GenerateOptions, generate
from .sample import generate_audio, latent_frames, sample_latents

__all__ = ["GenerateOptions", "generate", "generate_audio", "latent_frames", "sample_latents"]
