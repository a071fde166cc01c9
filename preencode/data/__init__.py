"""Datasets: configs, audio sources, pre-encoded latents, loaders."""
