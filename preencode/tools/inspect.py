"""``preencode inspect <output>``: what an output tree holds, and the statistics of its latents."""

from __future__ import annotations

import math

from .summary import Summary

RESERVOIR_SIZE = 200_000
_MAX_SHAPES = 5
_MAX_GROUPS = 10


def _count(n: int) -> str:
    return f"{n:,}"


def _num(x: float | None, digits: int = 4) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def format_report(summary: Summary) -> str:
    """The human report: aligned ``label  value`` lines, then the per-channel table."""
    rows: list[tuple[str, str]] = [("output", str(summary.root)), ("format", summary.format)]
    ranks = ", ".join(f"{rank}: {_count(n)}" for rank, n in sorted(summary.per_rank.items(), key=lambda kv: int(kv[0])))
    rows.append(("latents", f"{_count(summary.latents)}" + (f"  (per rank  {ranks})" if ranks else "")))
    if summary.shards:
        rows.append(("tar shards", _count(summary.shards)))
    hours = "unknown" if summary.seconds is None else f"{summary.hours:.3f} h ({summary.seconds:,.1f} s)"
    rows.append(("audio", f"{hours}  ({summary.seconds_source})"))
    if summary.frames_total:
        share = summary.frames_valid / summary.frames_total
        frames = f"{_count(summary.frames_total)} total, {_count(summary.frames_valid)} valid ({share:.1%})"
        rows.append(("frames", frames))
    shapes = ", ".join(f"{shape} ({_count(n)})" for shape, n in summary.shapes.most_common(_MAX_SHAPES))
    if len(summary.shapes) > _MAX_SHAPES:
        shapes += f", ... {len(summary.shapes) - _MAX_SHAPES} more"
    rows.append(("shapes", shapes or "-"))
    rows.append(("dtype", ", ".join(f"{d} ({_count(n)})" for d, n in summary.dtypes.most_common()) or "-"))
    latent = summary.latent
    model = (f"latent_dim {latent.latent_dim or '?'}, ratio {latent.downsampling_ratio or '?'}, "
             f"{latent.sample_rate or '?'} Hz, posterior {latent.posterior or '?'}  ({latent.source})")
    rows.append(("model", model))
    m = summary.moments
    counted = "all frames" if summary.include_padding else "valid frames"
    if m is not None and m.count and not summary.discrete:
        rows.append(("overall", f"mean {_num(m.overall_mean)}, std {_num(m.overall_std)}  ({counted})"))
        rms = summary.stored_std_rms
        if rms is None:
            rows.append(("suggested scale", f"{_num(summary.suggested_scale)}  (the std above)"))
        else:
            rows.append(("stored std", f"rms {_num(rms)}  (posterior std sidecars, {summary.std_values:,} values)"))
            rows.append(("suggested scale", f"{_num(summary.suggested_scale)}  (std of mean + std * noise: "
                                            f"sqrt({_num(m.overall_std)}² + {_num(rms)}²))"))
    for cause, n in sorted(summary.notes.items()):
        rows.append(("note", f"{_count(n)} latents: {cause}"))
    rows.append(("failures", _count(summary.failures.failures)))
    rows.append(("rejected", _count(summary.failures.rejected)))
    width = max(len(label) for label, _ in rows)
    lines = [f"{label:<{width}}  {value}" for label, value in rows]

    for group in summary.failures.groups[:_MAX_GROUPS]:
        lines.append(f"  {group.count:>6}  {group.stage}: {group.reason}  (e.g. {group.example or '-'})")
    if len(summary.failures.groups) > _MAX_GROUPS:
        lines.append(f"  ... {len(summary.failures.groups) - _MAX_GROUPS} more kinds of failure (see --json)")
    for problem in summary.problems + summary.failures.bad_lines:
        lines.append(f"problem  {problem}")
    if m is not None and m.count:
        lines.append("")
        lines.extend(_channel_table(summary))
    return "\n".join(lines)


def _channel_table(summary: Summary) -> list[str]:
    m = summary.moments
    assert m is not None  # checked by the caller
    counted = "all frames" if summary.include_padding else "valid frames only"
    if summary.discrete:
        header = f"{'quantizer':>9}  {'min':>8}  {'max':>8}"
        body = [f"{c:>9}  {m.minimum[c]:>8.0f}  {m.maximum[c]:>8.0f}" for c in range(m.channels)]
        return [f"tokens per quantizer ({counted})", header] + body
    std = m.std
    header = f"{'channel':>7}  {'mean':>9}  {'std':>9}  {'min':>9}  {'max':>9}"
    body = [f"{c:>7}  {m.mean[c]:>9.4f}  {std[c]:>9.4f}  {m.minimum[c]:>9.4f}  {m.maximum[c]:>9.4f}"
            for c in range(m.channels)]
    return [f"per channel ({counted}, {_count(m.count)} values each)", header] + body
