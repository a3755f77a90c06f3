"""Tiny server-side SVG charts (line and stacked bar) for the health page: no JavaScript, no
downloads, nothing fetched by the browser. Every text is HTML-escaped."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from html import escape

from pydantic import BaseModel, ConfigDict

# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
PALETTE = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#CC79A7",
    "#56B4E9",
    "#D55E00",
    "#F0E442",
    "#000000",
    "#999999",
)
FLAG_COLOR = "#D00000"
AXIS_COLOR = "#555555"
GRID_COLOR = "#E4E4E4"
FONT = "font-family='sans-serif'"

Formatter = Callable[[float], str]


class Series(BaseModel):
    """One named line or bar stack layer; ``None`` marks a missing point."""

    model_config = ConfigDict(frozen=True)

    name: str
    values: list[float | None]
    color: str | None = None
    dashed: bool = False


def plain(v: float) -> str:
    return f"{v:g}" if abs(v) < 10_000 else f"{v / 1000:.0f}k"


def percent(v: float) -> str:
    return f"{100 * v:.0f}%" if v >= 0.1 or v == 0 else f"{100 * v:.1f}%"


def nice_ticks(top: float, count: int = 4) -> list[float]:
    """0 and round steps (1, 2, 5 x 10^k) reaching at least ``top``."""
    if top <= 0 or not math.isfinite(top):
        return [0.0, 1.0]
    raw = top / count
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    n = math.ceil(top / step - 1e-9)
    return [round(i * step, 12) for i in range(n + 1)]


class _Frame:
    """Plot area geometry shared by both chart kinds."""

    def __init__(self, width: int, height: int, n: int, y_top: float, legend_rows: int) -> None:
        self.left, self.right, self.top = 52, 20, 26
        self.bottom = 22 + 16 * legend_rows
        self.width, self.height, self.n = width, height, n
        self.ticks = nice_ticks(y_top)
        self.y_max = self.ticks[-1] or 1.0

    @property
    def plot_w(self) -> float:
        return self.width - self.left - self.right

    @property
    def plot_h(self) -> float:
        return self.height - self.top - self.bottom

    def y(self, v: float) -> float:
        return self.top + self.plot_h * (1 - min(v, self.y_max) / self.y_max)

    def x_point(self, i: int) -> float:
        if self.n <= 1:
            return self.left + self.plot_w / 2
        return self.left + self.plot_w * i / (self.n - 1)

    def x_band(self, i: int) -> tuple[float, float]:
        band = self.plot_w / max(self.n, 1)
        return self.left + band * i, band


def _axes(f: _Frame, x_labels: Sequence[str], fmt: Formatter, band: bool) -> list[str]:
    out: list[str] = []
    for t in f.ticks:
        y = f.y(t)
        out.append(
            f"<line x1='{f.left}' x2='{f.width - f.right}' y1='{y:.1f}' y2='{y:.1f}' "
            f"stroke='{GRID_COLOR}'/>"
        )
        out.append(
            f"<text x='{f.left - 6}' y='{y + 4:.1f}' text-anchor='end' font-size='11' {FONT} "
            f"fill='{AXIS_COLOR}'>{escape(fmt(t))}</text>"
        )
    base = f.top + f.plot_h
    out.append(
        f"<line x1='{f.left}' x2='{f.width - f.right}' y1='{base:.1f}' y2='{base:.1f}' "
        f"stroke='{AXIS_COLOR}'/>"
    )
    fits = max(2, int(f.plot_w // 44))  # labels are ~5 characters of 10 px type
    every = max(1, math.ceil(len(x_labels) / fits))
    last = len(x_labels) - 1
    for i, label in enumerate(x_labels):
        # every k-th label and the last one, dropping a k-th label too close to the last
        if i != last and (i % every or last - i < every * 0.75):
            continue
        if band:
            x0, w = f.x_band(i)
            x = x0 + w / 2
        else:
            x = f.x_point(i)
        out.append(
            f"<text x='{x:.1f}' y='{base + 14:.1f}' text-anchor='middle' font-size='10' {FONT} "
            f"fill='{AXIS_COLOR}'>{escape(label)}</text>"
        )
    return out


def _legend(f: _Frame, series: Sequence[Series], colors: Sequence[str]) -> list[str]:
    out: list[str] = []
    x, row = float(f.left), 0
    for s, color in zip(series, colors, strict=True):
        w = 22 + 6.5 * len(s.name)
        if x + w > f.width - f.right and x > f.left:
            x, row = float(f.left), row + 1
        y = f.height - f.bottom + 30 + 16 * row
        dash = " stroke-dasharray='4 3'" if s.dashed else ""
        out.append(
            f"<line x1='{x:.1f}' x2='{x + 14:.1f}' y1='{y - 4:.1f}' y2='{y - 4:.1f}' "
            f"stroke='{color}' stroke-width='3'{dash}/>"
        )
        out.append(
            f"<text x='{x + 18:.1f}' y='{y:.1f}' font-size='11' {FONT}>{escape(s.name)}</text>"
        )
        x += w
    return out


def _legend_rows(series: Sequence[Series], width: int) -> int:
    rows, x = 1, 52.0
    for s in series:
        w = 22 + 6.5 * len(s.name)
        if x + w > width - 20 and x > 52:
            rows, x = rows + 1, 52.0
        x += w
    return rows


def _open(width: int, height: int, title: str, flagged: bool) -> list[str]:
    border = FLAG_COLOR if flagged else "#CCCCCC"
    return [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
        f"viewBox='0 0 {width} {height}' role='img' aria-label='{escape(title)}'>",
        f"<title>{escape(title)}</title>",
        f"<rect x='0.5' y='0.5' width='{width - 1}' height='{height - 1}' fill='white' "
        f"stroke='{border}' stroke-width='{2 if flagged else 1}'/>",
        f"<text x='8' y='17' font-size='13' font-weight='bold' {FONT}>{escape(title)}</text>",
    ]


def _colors(series: Sequence[Series]) -> list[str]:
    return [s.color or PALETTE[i % len(PALETTE)] for i, s in enumerate(series)]


def line_chart(
    series: Sequence[Series],
    x_labels: Sequence[str],
    *,
    title: str,
    width: int = 640,
    height: int = 220,
    y_format: Formatter = plain,
    y_max: float | None = None,
    flags: Sequence[tuple[int, int, str]] = (),
) -> str:
    """Lines over ``x_labels``; ``flags`` = (series index, x index, tooltip) drawn as red rings
    (a flagged chart also gets a red frame)."""
    values = [v for s in series for v in s.values if v is not None]
    top = y_max if y_max is not None else max(values, default=0.0)
    f = _Frame(width, height, len(x_labels), top, _legend_rows(series, width))
    colors = _colors(series)
    out = _open(width, height, title, bool(flags))
    out += _axes(f, x_labels, y_format, band=False)
    for s, color in zip(series, colors, strict=True):
        d: list[str] = []
        pen_down = False
        for i, v in enumerate(s.values):
            if v is None:
                pen_down = False
                continue
            d.append(f"{'L' if pen_down else 'M'}{f.x_point(i):.1f},{f.y(v):.1f}")
            pen_down = True
        if d:
            dash = " stroke-dasharray='5 4'" if s.dashed else ""
            out.append(
                f"<path d='{' '.join(d)}' fill='none' stroke='{color}' stroke-width='2'{dash}>"
                f"<title>{escape(s.name)}</title></path>"
            )
        points = [(i, v) for i, v in enumerate(s.values) if v is not None]
        if len(points) == 1:  # a single day draws no line: show the point
            i, v = points[0]
            out.append(
                f"<circle cx='{f.x_point(i):.1f}' cy='{f.y(v):.1f}' r='2.5' fill='{color}'/>"
            )
    for si, xi, tip in flags:
        v = series[si].values[xi]
        if v is None:
            continue
        out.append(
            f"<circle cx='{f.x_point(xi):.1f}' cy='{f.y(v):.1f}' r='5' fill='none' "
            f"stroke='{FLAG_COLOR}' stroke-width='2'><title>{escape(tip)}</title></circle>"
        )
    out += _legend(f, series, colors)
    out.append("</svg>")
    return "\n".join(out)


def stacked_bar_chart(
    series: Sequence[Series],
    x_labels: Sequence[str],
    *,
    title: str,
    width: int = 640,
    height: int = 220,
    y_format: Formatter = plain,
) -> str:
    """Bars stacked bottom-up in series order (missing values count as 0)."""
    totals = [sum((s.values[i] or 0.0) for s in series) for i in range(len(x_labels))]
    f = _Frame(width, height, len(x_labels), max(totals, default=0.0), _legend_rows(series, width))
    colors = _colors(series)
    out = _open(width, height, title, False)
    out += _axes(f, x_labels, y_format, band=True)
    for i, label in enumerate(x_labels):
        x0, band = f.x_band(i)
        acc = 0.0
        for s, color in zip(series, colors, strict=True):
            v = s.values[i] or 0.0
            if v <= 0:
                continue
            y_hi, y_lo = f.y(acc + v), f.y(acc)
            out.append(
                f"<rect x='{x0 + band * 0.15:.1f}' y='{y_hi:.1f}' width='{band * 0.7:.1f}' "
                f"height='{max(y_lo - y_hi, 0.5):.1f}' fill='{color}'>"
                f"<title>{escape(label)} {escape(s.name)}: {escape(plain(v))}</title></rect>"
            )
            acc += v
    out += _legend(f, series, colors)
    out.append("</svg>")
    return "\n".join(out)
