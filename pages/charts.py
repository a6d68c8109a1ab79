"""Charts drawn on the server as SVG: no script, readable by a screen reader (role="img" with a
title and a description that states the figures), printable.

A step chart shows how shares grow over time (clinics acknowledged, patients contacted, units
accounted for): each series is a count that rises at known moments, drawn as a step line from 0 %
to its share of a total. Colour never carries meaning alone: each series also has its own dash
pattern, marker shape and legend text.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

WIDTH = 720
HEIGHT = 300
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 16, 72  # margins: axis labels left, legend below

# (stroke colour, dash pattern): distinguishable in grey too.
STYLES = (("#1b6e33", ""), ("#0b5c7a", "8 4"), ("#8a4b00", "2 3"))


@dataclass(frozen=True)
class Series:
    """A count that rises by `step` at each moment of `events`, out of `total`."""

    key: str
    label: str
    total: int
    events: Sequence[tuple[datetime.datetime, int]] = field(default_factory=tuple)


@dataclass(frozen=True)
class Point:
    at: datetime.datetime
    count: int
    x: float
    y: float


def _x(at: datetime.datetime, start: datetime.datetime, end: datetime.datetime) -> float:
    span = (end - start).total_seconds() or 1.0
    offset = min(max((at - start).total_seconds(), 0.0), span)
    return round(LEFT + offset / span * (WIDTH - LEFT - RIGHT), 1)


def _y(count: int, total: int) -> float:
    share = 0.0 if total <= 0 else min(count / total, 1.0)
    return round(TOP + (1 - share) * (HEIGHT - TOP - BOTTOM), 1)


def step_points(series: Series, start: datetime.datetime, end: datetime.datetime) -> list[Point]:
    """The running count after each event, in time order, placed on the chart."""
    points = []
    count = 0
    for at, step in sorted(series.events, key=lambda event: event[0]):
        count += step
        points.append(Point(at, count, _x(at, start, end), _y(count, series.total)))
    return points


def _path(
    points: list[Point], series: Series, start: datetime.datetime, end: datetime.datetime
) -> str:
    """A step line: flat until each event, then straight up to the new count, on to `end`."""
    parts = [f"M {_x(start, start, end)} {_y(0, series.total)}"]
    for point in points:
        parts.append(f"H {point.x} V {point.y}")
    parts.append(f"H {_x(end, start, end)}")
    return " ".join(parts)


def _text(x: float, y: float, text: str, **attributes: str) -> str:
    extra = "".join(
        f' {name.replace("_", "-")}="{escape(value)}"' for name, value in attributes.items()
    )
    return f'<text x="{x}" y="{y}"{extra}>{escape(text)}</text>'


def _marker(point: Point, index: int, title: str) -> str:
    # A circle, a square, a diamond: the series tell apart without colour.
    colour = STYLES[index % len(STYLES)][0]
    if index % 3 == 0:
        shape = f'<circle cx="{point.x}" cy="{point.y}" r="4" fill="{colour}"/>'
    elif index % 3 == 1:
        shape = f'<rect x="{point.x - 4}" y="{point.y - 4}" width="8" height="8" fill="{colour}"/>'
    else:
        shape = (
            f'<polygon points="{point.x},{point.y - 5} {point.x + 5},{point.y} '
            f'{point.x},{point.y + 5} {point.x - 5},{point.y}" fill="{colour}"/>'
        )
    data = f'data-count="{point.count}" data-x="{point.x}" data-y="{point.y}"'
    return f'<g class="marker" {data}>{shape}<title>{escape(title)}</title></g>'


def step_chart(
    *,
    title: str,
    description: str,
    series: Sequence[Series],
    start: datetime.datetime,
    end: datetime.datetime,
    moment_label: object = None,
) -> SafeString:
    """The SVG of `series` from `start` to `end`, y from 0 to 100 % of each series' total.

    `moment_label` formats a moment for the axis and the markers' tooltips (the page passes its
    `when` filter, so times read in the user's zone)."""
    label = (
        moment_label if callable(moment_label) else (lambda at: timezone.localtime(at).isoformat())
    )
    end = max(end, start + datetime.timedelta(minutes=1))
    parts = [
        f'<svg class="graph step-chart" xmlns="http://www.w3.org/2000/svg" role="img" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
        f'aria-labelledby="chart-title chart-desc">',
        f'<title id="chart-title">{escape(title)}</title>',
        f'<desc id="chart-desc">{escape(description)}</desc>',
    ]
    for percent in (0, 25, 50, 75, 100):
        y = _y(percent, 100)
        parts.append(f'<line x1="{LEFT}" y1="{y}" x2="{WIDTH - RIGHT}" y2="{y}" stroke="#d5dde4"/>')
        parts.append(_text(LEFT - 6, y + 4, f"{percent} %", text_anchor="end", font_size="12"))
    axis_y = HEIGHT - BOTTOM
    parts.append(_text(LEFT, axis_y + 16, str(label(start)), font_size="12"))
    parts.append(
        _text(WIDTH - RIGHT, axis_y + 16, str(label(end)), text_anchor="end", font_size="12")
    )
    for index, one in enumerate(series):
        colour, dash = STYLES[index % len(STYLES)]
        points = step_points(one, start, end)
        dash_attribute = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(
            f'<g class="series" data-series="{escape(one.key)}" data-total="{one.total}">'
            f'<path d="{_path(points, one, start, end)}" fill="none" stroke="{colour}" '
            f'stroke-width="2.5"{dash_attribute}/>'
        )
        parts.extend(
            _marker(point, index, f"{one.label}: {point.count} / {one.total}, {label(point.at)}")
            for point in points
        )
        parts.append("</g>")
        legend_x = LEFT + index * 220
        legend_y = HEIGHT - 22
        parts.append(
            f'<line x1="{legend_x}" y1="{legend_y}" x2="{legend_x + 28}" y2="{legend_y}" '
            f'stroke="{colour}" stroke-width="2.5"{dash_attribute}/>'
        )
        count = points[-1].count if points else 0
        parts.append(
            _text(
                legend_x + 34, legend_y + 4, f"{one.label} ({count} / {one.total})", font_size="12"
            )
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every text above is escaped
