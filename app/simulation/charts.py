"""Inline SVG charts for the simulation report: a page that opens anywhere, with no script
and no external file, that a coordinator would rather look at than read."""

import html
from collections.abc import Mapping, Sequence

PALETTE = ("#4a7fb5", "#e0a030", "#5aa05a", "#c05050", "#8a6bb5", "#50a0a0", "#a08a50", "#999")
_FONT = "font-family='system-ui,sans-serif' font-size='11'"


def stacked_columns(
    columns: Sequence[tuple[str, Mapping[str, float]]],
    keys: Sequence[str],
    *,
    y_label: str,
    lines: Mapping[str, float] | None = None,
    y_max: float | None = None,
    width: int = 760,
    height: int = 220,
) -> str:
    """One column per (label, values), its values stacked in ``keys`` order; ``lines`` are
    horizontal reference lines (e.g. a cap), labelled at the right."""
    lines = {k: v for k, v in (lines or {}).items() if v is not None}
    left, right, top, bottom = 40, 130, 28, 30
    plot_w, plot_h = width - left - right, height - top - bottom
    totals = [sum(values.get(k, 0.0) for k in keys) for _, values in columns]
    top_value = y_max or max([*totals, *lines.values(), 1e-9])
    scale = plot_h / top_value
    step = plot_w / max(len(columns), 1)
    parts = [_open(width, height + 18 * ((len(keys) + 1) // 2))]
    for tick in _ticks(top_value):
        y = top + plot_h - tick * scale
        parts.append(
            f"<line x1='{left}' x2='{left + plot_w}' y1='{y:.1f}' y2='{y:.1f}' stroke='#eee'/>"
            f"<text x='{left - 4}' y='{y + 4:.1f}' text-anchor='end' {_FONT}>{tick:g}</text>"
        )
    for i, (label, values) in enumerate(columns):
        x, base = left + i * step, float(top + plot_h)
        for k, key in enumerate(keys):
            value = values.get(key, 0.0)
            if value <= 0:
                continue
            h = value * scale
            base -= h
            parts.append(
                f"<rect x='{x + step * 0.1:.1f}' y='{base:.1f}' width='{step * 0.8:.1f}' "
                f"height='{h:.1f}' fill='{PALETTE[k % len(PALETTE)]}'>"
                f"<title>{html.escape(f'{label}: {key} {value:g}')}</title></rect>"
            )
        if len(columns) <= 31 or i % max(1, len(columns) // 20) == 0:
            parts.append(
                f"<text x='{x + step / 2:.1f}' y='{top + plot_h + 14}' text-anchor='middle' "
                f"{_FONT}>{html.escape(label)}</text>"
            )
    for name, value in lines.items():
        y = top + plot_h - value * scale
        parts.append(
            f"<line x1='{left}' x2='{left + plot_w}' y1='{y:.1f}' y2='{y:.1f}' stroke='#b00' "
            f"stroke-dasharray='4 3'/><text x='{left + plot_w + 4}' y='{y + 4:.1f}' "
            f"fill='#b00' {_FONT}>{html.escape(f'{name} {value:g}')}</text>"
        )
    parts.append(f"<text x='4' y='{top + 8}' {_FONT} fill='#555'>{html.escape(y_label)}</text>")
    parts.append(_legend(keys, left, height + 4))
    parts.append("</svg>")
    return "".join(parts)


def bars(values: Mapping[str, float], *, width: int = 620, number: str = "{:g}") -> str:
    """Horizontal bars, one per label, longest first as given."""
    if not values:
        return "<p>None.</p>"
    label_w, row_h = 200, 18
    top_value = max(max(values.values()), 1e-9)
    plot_w = width - label_w - 70
    parts = [_open(width, row_h * len(values) + 4)]
    for i, (label, value) in enumerate(values.items()):
        y = i * row_h + 2
        w = max(value / top_value * plot_w, 0)
        parts.append(
            f"<text x='{label_w - 6}' y='{y + 12}' text-anchor='end' {_FONT}>"
            f"{html.escape(label)}</text><rect x='{label_w}' y='{y}' width='{w:.1f}' "
            f"height='{row_h - 4}' fill='{PALETTE[0]}'/><text x='{label_w + w + 4:.1f}' "
            f"y='{y + 12}' {_FONT}>{html.escape(number.format(value))}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _open(width: int, height: int) -> str:
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
        f"viewBox='0 0 {width} {height}' role='img'>"
    )


def _legend(keys: Sequence[str], left: int, y: int) -> str:
    parts = []
    for k, key in enumerate(keys):
        x, row = left + (k % 2) * 360, y + (k // 2) * 18
        shown = key if len(key) <= 58 else key[:56] + "…"
        parts.append(
            f"<rect x='{x}' y='{row}' width='10' height='10' fill='{PALETTE[k % len(PALETTE)]}'/>"
            f"<text x='{x + 14}' y='{row + 9}' {_FONT}>{html.escape(shown)}"
            f"<title>{html.escape(key)}</title></text>"
        )
    return "".join(parts)


def _ticks(top: float) -> list[float]:
    """Round gridline values from 0 to ``top``: about four of them."""
    raw = top / 4
    magnitude = 10 ** len(str(int(raw))) / 10 if raw >= 1 else 0.1
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    return [round(i * step, 6) for i in range(int(top / step) + 1)]
