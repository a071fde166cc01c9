"""Choosing the speed features of a job (padding skipping, length-aware batching)."""

from __future__ import annotations

from typing import Any

from .validate import Job


def pre_bottleneck_for(job: Job) -> Any:
    """The pre-bottleneck function of the engine (None: plain full-window encoding)."""
    return None


def batching_for(job: Job, plan: Any) -> Any:
    """The batch builder of the engine (None: batches in index order)."""
    return None
