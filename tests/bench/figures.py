"""What every benchmark returns: one :class:`Figure` per measured number, beside the baseline it
was measured against in the same run, and what the benchmarks share to produce them."""

from __future__ import annotations

import msgspec


class Figure(msgspec.Struct, kw_only=True):
    """One measured number beside its baseline. ``met`` is None where no aim is set."""

    name: str
    figure: float
    unit: str
    baseline: str
    baseline_figure: float
    aim: str = ""
    met: bool | None = None
    notes: str = ""

    @property
    def ratio(self) -> float | None:
        return self.figure / self.baseline_figure if self.baseline_figure else None


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of ``values`` (``fraction`` 0.99 for p99)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def unthrottled() -> dict[str, str]:
    """Environment that lifts the rate limits out of a benchmark's reach without switching them
    off: a benchmark hammers login and search from one address on purpose, but a real anonymous
    request still pays the limiter's Redis round trip, so the figures include it."""
    return {"HANDOFF_LOGIN_RATE_LIMIT": str(10**9), "HANDOFF_SEARCH_RATE_LIMIT": str(10**9)}


def _number(value: float) -> str:
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"


def markdown(figures: list[Figure]) -> str:
    """The figures as a Markdown table, each beside its baseline."""
    lines = [
        "| figure | value | baseline (same run) | baseline value | value/baseline | aim | met | notes |",
        "| --- | ---: | --- | ---: | ---: | --- | --- | --- |",
    ]
    for f in figures:
        ratio = f"{f.ratio:.2f}×" if f.ratio is not None else "—"
        met = {True: "met", False: "**not met**", None: "—"}[f.met]
        lines.append(
            f"| {f.name} | {_number(f.figure)} {f.unit} | {f.baseline} | {_number(f.baseline_figure)} "
            f"{f.unit} | {ratio} | {f.aim or '—'} | {met} | {f.notes} |"
        )
    return "\n".join(lines)
