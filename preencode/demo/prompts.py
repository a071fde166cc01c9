"""Prompts of the demo clips, as a stable-audio-tools custom metadata module.

A dataset config entry ``"custom_metadata_module": "<this file>"`` adds ``prompt`` to each sample's
metadata (``seconds_start`` and ``seconds_total`` are there already): the three fields Stable Audio
Open's conditioners read. Your own module does the same from your own labels, e.g. a CSV keyed by
``info["relpath"]``.
"""

from __future__ import annotations

from pathlib import PurePath
from typing import Any

PROMPTS = {
    "chord_a": "a warm major chord on a soft synth pad",
    "low_hum": "a low deep hum with bass",
    "bright": "bright high tones ringing like bells",
    "long_drone": "a long slow ambient drone",
}
DEFAULT_PROMPT = "ambient synth tones"


def get_custom_metadata(info: dict[str, Any], audio: Any) -> dict[str, Any]:
    """``info`` is the sample's metadata (``relpath``, ``seconds_total``, ...); ``audio`` is None for latents."""
    stem = PurePath(str(info.get("relpath") or info.get("path") or "")).stem
    return {"prompt": PROMPTS.get(stem, DEFAULT_PROMPT)}
