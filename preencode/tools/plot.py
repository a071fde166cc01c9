"""The ``inspect --plot`` figure: per-channel mean and std, and a histogram of latent values."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..errors import UserError
from .summary import Summary

log = logging.getLogger(__name__)

HISTOGRAM_BINS = 100


def plot_summary(summary: Summary, path: Path) -> None:
    """Draw the figure to ``path`` (PNG, Agg backend, no display needed).

    The histogram shows a uniform random sample of the counted values (``summary.reservoir``).

    Raises:
        UserError: nothing to plot, or ``path`` cannot be written.
    """
    m = summary.moments
    if m is None or m.count == 0:
        raise UserError(f"No latent values to plot in {summary.root}.", "Check the output folder with "
                        "`preencode verify`.")
    if not path.parent.is_dir():
        raise UserError(f"Cannot write the plot {path}: folder {path.parent} does not exist.",
                        "Create the folder or pick another --plot path.")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    channels = np.arange(m.channels)
    fig, (ax_mean, ax_std, ax_hist) = plt.subplots(3, 1, figsize=(10, 9), constrained_layout=True)
    counted = "all frames" if summary.include_padding else "valid frames"
    ax_mean.bar(channels, m.mean, color="tab:blue")
    ax_mean.axhline(0.0, color="black", linewidth=0.5)
    ax_mean.set(title=f"per-channel mean ({counted})", xlabel="channel", ylabel="mean")
    ax_std.bar(channels, m.std, color="tab:orange")
    if summary.suggested_scale is not None:
        ax_std.axhline(summary.suggested_scale, color="black", linestyle="--", linewidth=1,
                       label=f"overall std {summary.suggested_scale:.4f}")
        ax_std.legend(loc="upper right")
    ax_std.set(title="per-channel std", xlabel="channel", ylabel="std")
    sample = summary.reservoir.values if summary.reservoir is not None else np.empty(0)
    if sample.size:
        ax_hist.hist(sample, bins=HISTOGRAM_BINS, color="tab:green", density=True)
    ax_hist.set(title=f"value histogram ({sample.size:,} values sampled uniformly)", xlabel="value",
                ylabel="density")
    try:
        fig.savefig(path, dpi=100)
    except OSError as err:
        raise UserError(f"Cannot write the plot {path}: {err}.", "Pick another --plot path.") from err
    finally:
        plt.close(fig)
    log.info("plot written to %s", path)
