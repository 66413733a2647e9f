"""Server-rendered inline SVG charts: bars for actual use, a step line for the usual use, a day grid of activity."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

from api.pages.usage import Series

WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 720, 180, 44, 22, 10


@dataclass(frozen=True, slots=True)
class Tick:
    """A label under the x axis at bin ``index``."""

    index: int
    label: str


def _fmt(v: float) -> str:
    return f"{v:.0f}" if v >= 10 else f"{v:.1f}" if v >= 1 else f"{v:.2f}"


def bar_chart(series: Series, ticks: Sequence[Tick], label: Callable[[int], str], title: str,
              usual_label: str, unknown_label: str) -> Markup:
    """Bars of actual use with the usual use as a line; hover titles give each bin's figures."""
    bins = series.bins
    n = max(len(bins), 1)
    peak = max([b.actual or 0 for b in bins] + [b.usual or 0 for b in bins] + [0.001])
    plot_w, plot_h = WIDTH - LEFT - 4, HEIGHT - BOTTOM - TOP
    bw = plot_w / n

    def y(v: float) -> float:
        return TOP + plot_h - v / peak * plot_h

    parts = [(f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}" '
             f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>')]
    for frac in (0, 0.5, 1):
        gy = y(peak * frac)
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - 4}" y1="{gy:.1f}" y2="{gy:.1f}"/>'
                     f'<text class="axis" x="{LEFT - 4}" y="{gy + 4:.1f}" text-anchor="end">'
                     f'{_fmt(peak * frac)}</text>')
    for i, b in enumerate(bins):
        x = LEFT + i * bw
        tip = f"{label(b.start)}: " + (f"{_fmt(b.actual)} {series.unit}" if b.actual is not None else unknown_label)
        if b.usual is not None:
            tip += f" ({usual_label} {_fmt(b.usual)})"
        if b.actual is None:
            parts.append(f'<rect class="nodata" x="{x:.1f}" y="{TOP}" width="{max(bw - 0.5, 0.5):.1f}" '
                         f'height="{plot_h}"><title>{escape(tip)}</title></rect>')
        else:
            h = max(b.actual / peak * plot_h, 0.5 if b.actual > 0 else 0)
            parts.append(f'<rect class="bar" x="{x:.1f}" y="{TOP + plot_h - h:.1f}" width="{max(bw - 0.5, 0.5):.1f}" '
                         f'height="{h:.1f}"><title>{escape(tip)}</title></rect>')
    path, pen_up = [], True
    for i, b in enumerate(bins):
        if b.usual is None:
            pen_up = True
            continue
        x0, yy = LEFT + i * bw, y(b.usual)
        path.append(f"{'M' if pen_up else 'L'}{x0:.1f},{yy:.1f}L{x0 + bw:.1f},{yy:.1f}")
        pen_up = False
    if path:
        parts.append(f'<path class="usual" d="{"".join(path)}"/>')
    for t in ticks:
        x = LEFT + t.index * bw
        parts.append(f'<line class="tick" x1="{x:.1f}" x2="{x:.1f}" y1="{TOP + plot_h}" y2="{TOP + plot_h + 4}"/>'
                     f'<text class="axis" x="{x + 2:.1f}" y="{HEIGHT - 6}">{escape(t.label)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def activity_grid(days: Sequence[tuple[str, Sequence[bool | None]]], title: str, legend: Sequence[str]) -> Markup:
    """One row per day, one cell per hour: active, quiet, or no data (``None``)."""
    cell, gap, left, top = 24, 2, 64, 16
    width = left + 24 * (cell + gap)
    height = top + len(days) * (cell + gap)
    parts = [(f'<svg class="grid-chart" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}" '
             f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>')]
    for h in range(0, 24, 3):
        parts.append(f'<text class="axis" x="{left + h * (cell + gap)}" y="11">{h:02d}</text>')
    for row, (day, hours) in enumerate(days):
        yy = top + row * (cell + gap)
        parts.append(f'<text class="axis" x="0" y="{yy + cell - 7}">{escape(day)}</text>')
        for h, active in enumerate(hours):
            cls = "nodata" if active is None else "on" if active else "off"
            state = legend[2] if active is None else legend[0] if active else legend[1]
            parts.append(f'<rect class="{cls}" x="{left + h * (cell + gap)}" y="{yy}" width="{cell}" height="{cell}" '
                         f'rx="3"><title>{escape(day)} {h:02d}:00 {escape(state)}</title></rect>')
    parts.append("</svg>")
    return Markup("".join(parts))
