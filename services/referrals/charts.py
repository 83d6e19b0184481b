"""Charts for the dashboard, drawn as SVG on the server: the geometry is computed here, the
markup is written by the template (staff/_charts.html), and every chart comes with the table
that says the same thing in text."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

# Colour-blind-safe palette (Okabe–Ito), in order.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")


class Bar(msgspec.Struct, kw_only=True, frozen=True):
    label: str
    short_label: str  # what fits left of the bar; the full label goes in the tooltip
    value: float
    shown: str
    x: float
    y: float
    width: float
    height: float
    colour: str = PALETTE[0]


class BarChart(msgspec.Struct, kw_only=True, frozen=True):
    """Horizontal bars, one per row: a funnel or a per-partner measure."""

    title: str
    width: int
    height: int
    label_width: int
    bars: list[Bar]
    unit: str = ""


class Segment(msgspec.Struct, kw_only=True, frozen=True):
    series: str
    value: int
    y: float
    height: float
    colour: str


class Column(msgspec.Struct, kw_only=True, frozen=True):
    label: str
    total: int
    x: float
    width: float
    segments: list[Segment]


class StackedChart(msgspec.Struct, kw_only=True, frozen=True):
    """Vertical stacked columns: one per month, one colour per category."""

    title: str
    width: int
    height: int
    baseline: float
    columns: list[Column]
    legend: list[tuple[str, str]]
    series: list[str]


def bars(
    title: str,
    rows: Sequence[tuple[str, float, str]],
    *,
    unit: str = "",
    width: int = 560,
    label_width: int = 190,
    row_height: int = 28,
) -> BarChart:
    """``rows`` as (label, value, value as shown) → horizontal bars scaled to the largest value."""
    top = max((value for _, value, _ in rows), default=0) or 1
    room = width - label_width - 70
    drawn = [
        Bar(
            label=label,
            short_label=fit(label, label_width - 12),
            value=value,
            shown=shown,
            x=label_width,
            y=8 + i * row_height,
            width=round(room * value / top, 1),
            height=row_height - 8,
            colour=PALETTE[0],
        )
        for i, (label, value, shown) in enumerate(rows)
    ]
    return BarChart(
        title=title, width=width, height=16 + len(rows) * row_height, label_width=label_width, bars=drawn, unit=unit
    )


def fit(label: str, pixels: float, *, char_width: float = 7.0) -> str:
    """``label`` cut with an ellipsis so that it fits in ``pixels`` at the charts' 13 px font
    (an average glyph is about 7 px wide); SVG text does not wrap or clip by itself."""
    room = max(int(pixels // char_width), 2)
    return label if len(label) <= room else label[: room - 1].rstrip() + "…"


def stacked(
    title: str, columns: Sequence[tuple[str, dict[str, int]]], *, width: int = 560, height: int = 240
) -> StackedChart:
    """``columns`` as (label, {series: count}) → stacked columns scaled to the tallest."""
    series = sorted({name for _, counts in columns for name in counts})
    colours = {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(series)}
    baseline = height - 28
    top = max((sum(counts.values()) for _, counts in columns), default=0) or 1
    slot = (width - 20) / max(len(columns), 1)
    drawn = []
    for i, (label, counts) in enumerate(columns):
        y: float = baseline
        segments = []
        for name in series:
            value = counts.get(name, 0)
            if not value:
                continue
            h = round((baseline - 16) * value / top, 1)
            y -= h
            segments.append(Segment(series=name, value=value, y=round(y, 1), height=h, colour=colours[name]))
        drawn.append(
            Column(
                label=label,
                total=sum(counts.values()),
                x=round(10 + i * slot + slot * 0.15, 1),
                width=round(slot * 0.7, 1),
                segments=segments,
            )
        )
    return StackedChart(
        title=title,
        width=width,
        height=height,
        baseline=baseline,
        columns=drawn,
        legend=[(name, colours[name]) for name in series],
        series=series,
    )
