"""SVG charts for card pages, written by hand (no plotting library): small, static, escaped.

Every label that comes from a receipt (slice names, quantization names, hardware labels) is XML-escaped;
an SVG is served as an image file and shown through ``<img>``, so even a hostile label stays inert.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape, quoteattr

from generator.figures import at_floor, role_label, role_order
from receipts.metrics.latency import nearest_rank

if TYPE_CHECKING:
    from receipts.formats import Footprint, Results
    from receipts.formats.footprint import Point

__all__ = [
    "RUN_CHARTS",
    "cost_by_quant",
    "horizontal_bars",
    "latency_distribution",
    "reliability_diagram",
    "retention_by_slice",
    "robustness_by_variant",
]

COLORS = {"teacher": "#5c6bc0", "base": "#bdbdbd", "student": "#26a69a", "sft": "#ffa726"}
COLORS |= {"base model": COLORS["base"], "SFT baseline": COLORS["sft"]}  # the same roles, in words
# A chart is an image: the page's light/dark scheme cannot restyle it, so every chart paints its own opaque
# light background and dark text (≥ 4.5:1) and reads the same on a light page, a dark page and paper.
BACKGROUND, INK = "#ffffff", "#212121"
_FALLBACK = ["#8d6e63", "#ab47bc", "#29b6f6", "#d4e157"]
_MAX_ROLES = 6  # past six overlapping lines a reliability diagram stops being readable
_MAX_DOTS = 400  # per latency row: an evenly spaced pick from the sorted samples keeps the shape


def horizontal_bars(
    title: str,
    groups: Sequence[tuple[str, Sequence[tuple[str, float | None]]]],
    *,
    unit: str = "",
    max_value: float | None = None,
    intervals: Mapping[tuple[str, str], tuple[float, float]] | None = None,
) -> str:
    """Grouped horizontal bars: ``groups`` = [(label, [(series, value), ...]), ...]. Values ≥ 0.

    ``intervals`` maps (label, series) to a 95% CI, drawn as a whisker over the bar (clipped to the plot)
    and written beside the value.
    """
    series = list(dict.fromkeys(name for _, values in groups for name, _ in values))
    colors = _palette(series)
    top = (
        max_value or max((v for _, values in groups for _, v in values if v is not None), default=1.0) or 1.0
    )
    bar, gap, label_w, plot_w = 12, 10, 170, 360
    height = 40 + sum(len(values) * bar + gap for _, values in groups) + 24
    width = label_w + plot_w + 90
    out = _svg_open(title, width, height)
    y = 30
    for label, values in groups:
        out.append(f'<text x="0" y="{y + bar}" >{escape(_clip(label, 28))}</text>')
        for name, value in values:
            if value is not None:
                w = max(1.0, plot_w * value / top)
                out.append(
                    f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar - 2}" fill="{colors[name]}"/>'
                )
                text = f"{value:.3g}{unit}"
                ci = (intervals or {}).get((label, name))
                if ci is not None:
                    out.append(_whisker(label_w, plot_w, top, y + (bar - 2) / 2, ci))
                    text += f" [{ci[0]:.3g}, {ci[1]:.3g}]"
            else:
                w, text = 0.0, "n/a"
            out.append(f'<text x="{label_w + w + 4:.1f}" y="{y + bar - 3}">{escape(text)}</text>')
            y += bar
        y += gap
    x = 0
    for name in series:
        out.append(f'<rect x="{x}" y="{y + 4}" width="10" height="10" fill="{colors[name]}"/>')
        out.append(f'<text x="{x + 14}" y="{y + 13}">{escape(_clip(name, 24))}</text>')
        x += 20 + 7 * len(_clip(name, 24))
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _whisker(left: int, width: int, top: float, y: float, ci: tuple[float, float]) -> str:
    low, high = (left + width * min(max(v / top, 0.0), 1.0) for v in ci)
    ends = f'x1="{low:.1f}" y1="{y:.1f}" x2="{high:.1f}" y2="{y:.1f}"'
    return f'<line {ends} stroke="#212121" stroke-width="1.5"/>'


def _svg_open(title: str, width: int, height: int) -> list[str]:
    # quoteattr, not escape: the title carries the pack id, and a quote must not end the attribute
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11" fill="{INK}" role="img" '
        f"aria-label={quoteattr(title)}>",
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="{BACKGROUND}"/>',
        f'<text x="0" y="14" font-size="13" font-weight="bold">{escape(title)}</text>',
    ]


def _palette(names: Sequence[str]) -> dict[str, str]:
    return {name: COLORS.get(name, _FALLBACK[i % len(_FALLBACK)]) for i, name in enumerate(names)}


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def retention_by_slice(results: Results) -> str | None:
    """The primary metric per slice for each role, and the student's retention with its CI, or ``None``.

    Roles are teacher, base, student, ...; retention is drawn with its 95% CI where the run has one.
    ``None`` for a floor pack (every role at zero): a chart of zeros would say nothing.
    """
    if at_floor(results):
        return None
    primary = results.primary_metric
    groups = []
    intervals: dict[tuple[str, str], tuple[float, float]] = {}
    for slice_name, by_metric in (results.metrics or {}).items():
        metric = by_metric.get(primary) if primary is not None else None
        roles = metric.roles if metric is not None else {}
        values = [(role, _float(estimate.value)) for role, estimate in roles.items() if "@" not in role]
        kept = (metric.retention or {}).get("student") if metric is not None else None
        if kept is not None and kept.value is not None:
            values.append((RETAINED, kept.value))
            low, high = kept.ci95 or (None, None)
            if low is not None and high is not None:
                intervals[(slice_name, RETAINED)] = (low, high)
        if values:
            groups.append((slice_name, values))
    if not groups:
        return None
    title = f"{primary} per slice · {results.pack.id}"
    return horizontal_bars(title, groups[:40], max_value=1.0, intervals=intervals)


def robustness_by_variant(results: Results) -> str | None:
    """The primary metric per prompt variant for each role (items as written first), or ``None``.

    Reads the ``all`` slice (the items as written) and the ``variant=<name>`` slices; ``None`` when the run
    has no variant besides the original, or on a floor pack. Roles in words, teacher first; the CIs are in
    the card's slice table (whiskers on five bars per group would hide the values).
    """
    primary = results.primary_metric
    metrics = results.metrics or {}
    names = [("as written", "all")] + [
        (name.removeprefix("variant="), name) for name in sorted(metrics) if name.startswith("variant=")
    ]
    if len(names) < 2 or primary is None or at_floor(results):
        return None
    groups = []
    for label, name in names[:40]:
        metric = metrics[name].get(primary)
        if metric is not None:
            ordered = sorted(metric.roles.items(), key=lambda item: role_order(item[0]))
            groups.append((label, [(role_label(role), _float(e.value)) for role, e in ordered]))
    title = f"{primary} per prompt variant · {results.pack.id}"
    return horizontal_bars(title, groups, max_value=1.0)


RETAINED = "student retention (95% CI)"
"""The series name of retention in `retention_by_slice`: (S - B)/(T - B), drawn with its CI."""


def cost_by_quant(points: Sequence[Mapping[str, Any]]) -> str | None:
    """Decode tok/s (p50) per quantization and hardware, or ``None`` when nothing was benched."""
    groups = []
    for p in points:
        if p.get("status") == "ok":
            label = f"{p.get('quant')} c{p.get('concurrency')}"
            groups.append(
                (label, [(str(p.get("hardware") or p.get("hw_class")), _float(p.get("decode_tps_p50")))])
            )
    if not groups:
        return None
    return horizontal_bars("decode tokens/s (p50) per quantization", groups, unit=" tok/s")


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _finite(value: Any) -> float | None:
    number = _float(value)
    return number if number is not None and math.isfinite(number) else None


# ------------------------------------------------------------------------------------ reliability diagram


def reliability_diagram(results: Results) -> str | None:
    """Accuracy against mean confidence per reliability bin, one line per role, or ``None``.

    Reads ``results.calibration[role].reliability`` (the run's equal-width bins; empty ones are skipped;
    the schema leaves their shape free, so they are read defensively) and ``.ece_10_equal_mass`` for the
    legend. Marker area follows the bin's count. At most six roles are drawn, quantized variants
    (``student@int8``) included; ``None`` when no role has a non-empty bin, or on a floor pack (every role
    at zero: every point would sit on the bottom edge).
    """
    if at_floor(results):
        return None
    calibration = results.calibration or {}
    roles = [(role, bins, entry) for role, entry in calibration.items() if (bins := _bins(entry.reliability))]
    roles = roles[:_MAX_ROLES]
    if not roles:
        return None
    left, top, size = 44, 30, 240
    legend_x = left + size + 24
    out = _svg_open(f"reliability · {results.pack.id}", legend_x + 230, top + size + 44)
    out += _unit_axes(left, top, size)
    out += _legend_row(legend_x, top + 6, "#9e9e9e", "perfect calibration", dashed=True)
    colors = _palette([role for role, _, _ in roles])
    for i, (role, bins, entry) in enumerate(roles, start=1):
        xy = [(left + size * conf, top + size * (1 - acc), count) for conf, acc, count in bins]
        points = " ".join(f"{x:.1f},{y:.1f}" for x, y, _ in xy)
        out.append(f'<polyline points="{points}" fill="none" stroke="{colors[role]}" stroke-width="1.5"/>')
        out += [
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{_marker_radius(count):.1f}" '
            f'fill="{colors[role]}" fill-opacity="0.8"/>'
            for x, y, count in xy
        ]
        ece = _finite(entry.ece_10_equal_mass)
        text = f"{_clip(role_label(role), 26)} · ECE {'n/a' if ece is None else f'{ece:.3f}'}"
        out += _legend_row(legend_x, top + 6 + 18 * i, colors[role], text)
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _marker_radius(count: float) -> float:
    # area grows with the count, on one scale for every page (same count, same size); capped at ~95 items
    return min(1.5 + 0.8 * math.sqrt(count), 9.0)


def _bins(reliability: Any) -> list[tuple[float, float, float]]:
    """(mean confidence, accuracy, count) of the non-empty bins, values clamped into [0, 1]."""
    out = []
    for b in reliability if isinstance(reliability, list) else []:
        if not isinstance(b, Mapping):
            continue
        conf, acc, count = (_finite(b.get(key)) for key in ("mean_confidence", "accuracy", "count"))
        if conf is not None and acc is not None and count is not None and count > 0:
            out.append((min(max(conf, 0.0), 1.0), min(max(acc, 0.0), 1.0), count))
    return out


def _unit_axes(left: int, top: int, size: int) -> list[str]:
    """Both axes 0..1 with ticks at 0, 0.5 and 1, their titles, and the dashed diagonal."""
    bottom, right, mid = top + size, left + size, top + size / 2
    out = [
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{bottom}" stroke="#757575"/>',
        f'<line x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="#757575"/>',
        f'<line x1="{left}" y1="{bottom}" x2="{right}" y2="{top}" stroke="#9e9e9e" stroke-dasharray="4 3"/>',
        f'<text x="{left + size / 2:.1f}" y="{bottom + 32}" text-anchor="middle">mean confidence</text>',
        f'<text x="12" y="{mid:.1f}" text-anchor="middle" transform="rotate(-90 12 {mid:.1f})">'
        "accuracy</text>",
    ]
    for tick in (0.0, 0.5, 1.0):
        x, y = left + size * tick, bottom - size * tick
        out += [
            f'<line x1="{x:.1f}" y1="{bottom}" x2="{x:.1f}" y2="{bottom + 4}" stroke="#757575"/>',
            f'<text x="{x:.1f}" y="{bottom + 15}" text-anchor="middle">{tick:g}</text>',
            f'<line x1="{left - 4}" y1="{y:.1f}" x2="{left}" y2="{y:.1f}" stroke="#757575"/>',
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{tick:g}</text>',
        ]
    return out


def _legend_row(x: int, y: int, color: str, text: str, *, dashed: bool = False) -> list[str]:
    dash = ' stroke-dasharray="4 3"' if dashed else ""
    return [
        f'<line x1="{x}" y1="{y}" x2="{x + 16}" y2="{y}" stroke="{color}" stroke-width="2"{dash}/>',
        f'<text x="{x + 22}" y="{y + 4}">{escape(text)}</text>',
    ]


# ------------------------------------------------------------------------------- latency distribution


def latency_distribution(footprint: Footprint) -> str | None:
    """Per-call end-to-end seconds of each benched point as box and whiskers over its raw samples.

    One row per ``ok`` point of ``footprint.points``, from its ``.samples.e2e_s``: whiskers span
    min..max, the box p25..p75 and the bar marks the median (nearest rank, as `receipts bench` defines
    percentiles), and every call is a faint dot (at most 400 per row). The rows share one linear axis
    from 0 s. ``None`` when no ``ok`` point has samples.
    """
    rows = [
        (p.quant, f"{p.quant} c{p.concurrency}", samples)
        for p in footprint.points
        if (samples := _e2e_samples(p))
    ]
    if not rows:
        return None
    end, step = _nice_axis(max(samples[-1] for _, _, samples in rows))
    label_w, plot_w, row_h, top = 110, 360, 30, 30
    axis_y = top + row_h * len(rows) + 4
    out = _svg_open("end-to-end latency per call (s)", label_w + plot_w + 150, axis_y + 24)
    colors = _palette(list(dict.fromkeys(quant for quant, _, _ in rows)))

    def x_of(seconds: float) -> float:
        return label_w + plot_w * seconds / end

    for i, (quant, label, samples) in enumerate(rows):
        out += _box_row(label, samples, colors[quant], top + row_h * i + row_h / 2, x_of, x_of(end) + 8)
    out += _seconds_axis(label_w, plot_w, axis_y, end, step)
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _e2e_samples(point: Point) -> list[float]:
    """The point's non-negative per-call e2e seconds, sorted; empty unless its status is ok."""
    if point.status != "ok":
        return []
    return sorted(v for v in point.samples.e2e_s if v >= 0)


def _box_row(
    label: str,
    samples: Sequence[float],
    color: str,
    cy: float,
    x_of: Callable[[float], float],
    note_x: float,
) -> list[str]:
    """One row: label, whiskers, box, the sampled dots, the median bar and a median · n note."""
    # nearest-rank, as the footprint's own percentiles (the samples are sorted: the 0th is the smallest)
    quartiles = [samples[0], *(nearest_rank(samples, p) for p in (25, 50, 75, 100))]
    lo, q1, median, q3, hi = (x_of(q) for q in quartiles)
    n = len(samples)
    # evenly spaced ranks from the smallest to the largest sample: the tails stay visible
    dots = samples if n <= _MAX_DOTS else [samples[k * (n - 1) // (_MAX_DOTS - 1)] for k in range(_MAX_DOTS)]
    out = [
        '<g class="row">',
        f'<text x="0" y="{cy + 4:.1f}">{escape(_clip(label, 18))}</text>',
        f'<line x1="{lo:.1f}" y1="{cy:.1f}" x2="{hi:.1f}" y2="{cy:.1f}" stroke="#616161"/>',
        f'<line x1="{lo:.1f}" y1="{cy - 5:.1f}" x2="{lo:.1f}" y2="{cy + 5:.1f}" stroke="#616161"/>',
        f'<line x1="{hi:.1f}" y1="{cy - 5:.1f}" x2="{hi:.1f}" y2="{cy + 5:.1f}" stroke="#616161"/>',
        f'<rect x="{q1:.1f}" y="{cy - 7:.1f}" width="{max(q3 - q1, 1.0):.1f}" height="14" fill="{color}" '
        f'fill-opacity="0.25" stroke="{color}"/>',
    ]
    # a fixed jitter pattern spreads equal samples vertically without making the file nondeterministic
    out += [
        f'<circle cx="{x_of(s):.1f}" cy="{cy + (k * 7 % 11 - 5):.1f}" r="1.5" fill="{color}" '
        f'fill-opacity="0.35"/>'
        for k, s in enumerate(dots)
    ]
    out += [
        f'<line x1="{median:.1f}" y1="{cy - 7:.1f}" x2="{median:.1f}" y2="{cy + 7:.1f}" stroke="{color}" '
        f'stroke-width="2"/>',
        f'<text x="{note_x:.1f}" y="{cy + 4:.1f}">median {_seconds(quartiles[2])} · n {n}</text>',
        "</g>",
    ]
    return out


def _nice_axis(highest: float, intervals: int = 5) -> tuple[float, float]:
    """(end, step) of an axis from 0 past ``highest`` in about ``intervals`` steps of 1, 2 or 5 times 10^k."""
    raw = (highest if highest > 0 else 1.0) / intervals
    magnitude = 10.0 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    return step * max(1, math.ceil(highest / step - 1e-9)), step


def _seconds_axis(x0: int, width: int, y: int, end: float, step: float) -> list[str]:
    """The shared seconds axis: in ms when it ends below one second, else in s."""
    scale, unit = (1000.0, "ms") if end < 1 else (1.0, "s")
    out = [f'<line x1="{x0}" y1="{y}" x2="{x0 + width}" y2="{y}" stroke="#757575"/>']
    for k in range(round(end / step) + 1):
        x = x0 + width * k * step / end
        out += [
            f'<line x1="{x:.1f}" y1="{y}" x2="{x:.1f}" y2="{y + 4}" stroke="#757575"/>',
            f'<text x="{x:.1f}" y="{y + 16}" text-anchor="middle">{k * step * scale:g} {unit}</text>',
        ]
    return out


def _seconds(value: float) -> str:
    return f"{value * 1000:.3g} ms" if value < 1 else f"{value:.3g} s"


RUN_CHARTS: Mapping[str, Callable[[Results], str | None]] = {
    "retention": retention_by_slice,
    "reliability": reliability_diagram,
    "robustness": robustness_by_variant,
}
"""The charts a card page draws per signed run, by kind (the file is ``<kind>-<pack id>.svg``)."""
