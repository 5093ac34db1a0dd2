"""SVG charts for card pages, written by hand (no plotting library): small, static, escaped.

Every label that comes from a receipt (slice names, quantization names, hardware labels) is XML-escaped;
an SVG is served as an image file and shown through ``<img>``, so even a hostile label stays inert.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from xml.sax.saxutils import escape

__all__ = ["cost_by_quant", "horizontal_bars", "retention_by_slice"]

COLORS = {"teacher": "#5c6bc0", "base": "#bdbdbd", "student": "#26a69a", "sft": "#ffa726"}
_FALLBACK = ["#8d6e63", "#ab47bc", "#29b6f6", "#d4e157"]


def horizontal_bars(
    title: str,
    groups: Sequence[tuple[str, Sequence[tuple[str, float | None]]]],
    *,
    unit: str = "",
    max_value: float | None = None,
) -> str:
    """Grouped horizontal bars: ``groups`` = [(label, [(series, value), ...]), ...]. Values ≥ 0."""
    series = list(dict.fromkeys(name for _, values in groups for name, _ in values))
    colors = {name: COLORS.get(name, _FALLBACK[i % len(_FALLBACK)]) for i, name in enumerate(series)}
    top = (
        max_value or max((v for _, values in groups for _, v in values if v is not None), default=1.0) or 1.0
    )
    bar, gap, label_w, plot_w = 12, 10, 170, 360
    height = 40 + sum(len(values) * bar + gap for _, values in groups) + 24
    width = label_w + plot_w + 90
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11" role="img" '
        f'aria-label="{escape(title)}">',
        f'<text x="0" y="14" font-size="13" font-weight="bold">{escape(title)}</text>',
    ]
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


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def retention_by_slice(results: Mapping[str, Any]) -> str | None:
    """The primary metric per slice for each role (teacher, base, student, ...), or ``None``."""
    primary = results.get("primary_metric")
    metrics = results.get("metrics", {})
    groups = []
    for slice_name, by_metric in metrics.items():
        roles = by_metric.get(primary, {}).get("roles", {}) if isinstance(by_metric, Mapping) else {}
        values = [(role, _float(v.get("value"))) for role, v in roles.items() if "@" not in role]
        if values:
            groups.append((str(slice_name), values))
    if not groups:
        return None
    pack = results.get("pack", {}).get("id", "")
    return horizontal_bars(f"{primary} per slice · {pack}", groups[:40], max_value=1.0)


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
