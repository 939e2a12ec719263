"""Charts as small, self-contained SVG documents: a title, labelled axes, no script and no
style sheet (presentation attributes only, so a strict Content-Security-Policy shows them).
Every text is escaped."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

WIDTH, HEIGHT = 640, 280
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 50, 48
COLOURS = ("#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c")
FONT = 'font-family="system-ui, sans-serif"'


def esc(text: str) -> str:
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


def nice(value: float) -> float:
    """The smallest of 4, 8, 20, 40, 80, 200, ... (four whole ticks of 1, 2 or 5 times a
    power of ten) at or above ``value``."""
    step, n = 1.0, 0
    while 4 * step < value:
        n += 1
        step = (1, 2, 5)[n % 3] * 10.0 ** (n // 3)
    return 4 * step


def _number(value: float, percent: bool) -> str:
    if percent:
        return f"{100 * value:.0f}%"
    return f"{value:,.0f}" if value >= 10 or value == int(value) else f"{value:.2f}"


@dataclass(frozen=True)
class Frame:
    """The plotting area of a chart and its value ranges."""

    x_max: float
    y_max: float
    width: int = WIDTH
    height: int = HEIGHT

    def x(self, value: float) -> float:
        return round(LEFT + (self.width - LEFT - RIGHT) * value / (self.x_max or 1), 1)

    def y(self, value: float) -> float:
        bottom = self.height - BOTTOM
        return round(bottom - (bottom - TOP) * value / (self.y_max or 1), 1)


def _text(x: float, y: float, text: str, *, size: int = 11, anchor: str = "middle",
          extra: str = "") -> str:
    return (f'<text x="{x}" y="{y}" font-size="{size}" text-anchor="{anchor}" {FONT} '
            f'fill="#334155"{extra}>{esc(text)}</text>')


def _frame(frame: Frame, title: str, x_label: str, y_label: str, *,
           percent: bool) -> list[str]:
    """The document's head: title, axis labels, y gridlines with their values."""
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {frame.width} '
             f'{frame.height}" width="{frame.width}" height="{frame.height}" role="img" '
             f'aria-label="{esc(title)}">', f"<title>{esc(title)}</title>",
             _text(frame.width / 2, 20, title, size=14, extra=' font-weight="600"'),
             _text(frame.width / 2, frame.height - 8, x_label),
             _text(14, (frame.height - BOTTOM + TOP) / 2, y_label,
                   extra=f' transform="rotate(-90 14 {(frame.height - BOTTOM + TOP) / 2})"')]
    for n in range(5):
        value = frame.y_max * n / 4
        y = frame.y(value)
        parts.append(f'<line x1="{LEFT}" y1="{y}" x2="{frame.width - RIGHT}" y2="{y}" '
                     f'stroke="#e2e8f0"/>')
        parts.append(_text(LEFT - 6, y + 4, _number(value, percent), size=10, anchor="end"))
    return parts


def _x_ticks(frame: Frame, labels: Sequence[str], centre: bool) -> list[str]:
    step = max(1, len(labels) // 8)
    offset = 0.5 if centre else 0.0
    return [_text(frame.x(n + offset), frame.height - BOTTOM + 16, label, size=10)
            for n, label in enumerate(labels) if n % step == 0]


def bar_chart(title: str, labels: Sequence[str], values: Sequence[float], *, x_label: str,
              y_label: str) -> str:
    """One bar per label (days, topics)."""
    frame = Frame(len(labels), nice(max([*values, 1])))
    parts = _frame(frame, title, x_label, y_label, percent=False)
    width = max(1.0, frame.x(1) - frame.x(0) - 2)
    for n, value in enumerate(values):
        parts.append(f'<rect x="{frame.x(n) + 1}" y="{frame.y(value)}" width="{width:.1f}" '
                     f'height="{frame.y(0) - frame.y(value):.1f}" fill="{COLOURS[0]}">'
                     f"<title>{esc(labels[n])}: {_number(value, False)}</title></rect>")
    return "".join([*parts, *_x_ticks(frame, labels, True), "</svg>"])


def line_chart(title: str, labels: Sequence[str], series: dict[str, Sequence[float | None]],
               *, x_label: str, y_label: str, percent: bool = True) -> str:
    """A line per series over ``labels`` (a gap where a value is None), with a legend."""
    known = [v for values in series.values() for v in values if v is not None]
    frame = Frame(max(1, len(labels) - 1), 1.0 if percent else nice(max([*known, 1])))
    parts = _frame(frame, title, x_label, y_label, percent=percent)
    for colour, values in zip(COLOURS, series.values(), strict=False):
        points = [(frame.x(n), frame.y(v)) for n, v in enumerate(values) if v is not None]
        if len(points) > 1:
            path = " ".join(f"{x},{y}" for x, y in points)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" '
                         f'stroke-width="2"/>')
        parts += [f'<circle cx="{x}" cy="{y}" r="2.5" fill="{colour}"/>' for x, y in points]
    for n, (colour, name) in enumerate(zip(COLOURS, series, strict=False)):
        x = LEFT + 8 + 170 * n
        parts.append(f'<rect x="{x}" y="{TOP - 20}" width="10" height="10" fill="{colour}"/>')
        parts.append(_text(x + 14, TOP - 11, name, size=10, anchor="start"))
    return "".join([*parts, *_x_ticks(frame, labels, False), "</svg>"])


def risk_coverage_chart(points: Sequence[Sequence[float]], *, title: str,
                        threshold: float | None = None) -> str:
    """Wrong answers against answered questions as the bar for answering rises; the last
    point is where the bot runs (its own threshold), marked and labelled."""
    worst = max([p[1] for p in points] + [0.1]) * 1.15
    frame = Frame(1.0, worst, height=320)
    parts = _frame(frame, title, "answered (share of questions)",
                   "answered wrongly (share)", percent=True)
    parts += [_text(frame.x(v), frame.height - BOTTOM + 16, f"{100 * v:.0f}%", size=10)
              for v in (0, 0.25, 0.5, 0.75, 1.0)]
    path = " ".join(f"{frame.x(p[0])},{frame.y(p[1])}" for p in points)
    parts.append(f'<polyline points="{path}" fill="none" stroke="{COLOURS[0]}" '
                 'stroke-width="2"/>')
    if points:
        x, y = frame.x(points[-1][0]), frame.y(points[-1][1])
        label = "this bot" + (f" (threshold {threshold:g})" if threshold is not None else "") \
            + f": answers {100 * points[-1][0]:.0f}%, wrong {100 * points[-1][1]:.1f}%"
        parts.append(f'<circle cx="{x}" cy="{y}" r="6" fill="none" stroke="{COLOURS[1]}" '
                     'stroke-width="2.5"/>')
        anchor = "end" if points[-1][0] > 0.5 else "start"
        parts.append(_text(x + (-10 if anchor == "end" else 10), y - 10, label, anchor=anchor,
                           extra=f' fill="{COLOURS[1]}"'))
    return "".join([*parts, "</svg>"])


def confusion_chart(labels: Sequence[str], matrix: Sequence[Sequence[int]], *,
                    title: str) -> str:
    """Rows expected, columns predicted; each cell shaded by its share of the row."""
    n = max(1, len(labels))
    cell = max(8, min(36, 560 // n))
    margin = 12 + 6 * max((len(label) for label in labels), default=4)
    side = margin + cell * n + 20
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {side} {side + 30}" '
             f'width="{side}" height="{side + 30}" role="img" aria-label="{esc(title)}">',
             f"<title>{esc(title)}</title>", _text(side / 2, 18, title, size=13,
                                                   extra=' font-weight="600"'),
             _text(margin + cell * n / 2, side + 24, "predicted (columns); rows: expected")]
    top = 30 + margin
    for r, row in enumerate(matrix):
        total = sum(row) or 1
        parts.append(_text(margin - 4, top + cell * r + cell / 2 + 4, labels[r], size=9,
                           anchor="end"))
        for c, count in enumerate(row):
            shade = int(255 - 200 * count / total)
            parts.append(f'<rect x="{margin + cell * c}" y="{top + cell * r}" width="{cell}" '
                         f'height="{cell}" fill="rgb({shade},{shade},255)" stroke="#fff">'
                         f"<title>{esc(labels[r])} as {esc(labels[c])}: {count}</title></rect>")
    for c, label in enumerate(labels):
        x = margin + cell * c + cell / 2
        parts.append(_text(x, top - 4, label, size=9, anchor="start",
                           extra=f' transform="rotate(-60 {x} {top - 4})"'))
    return "".join([*parts, "</svg>"])
