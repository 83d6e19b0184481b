"""Chart geometry for the dashboard's server-drawn SVG."""

from __future__ import annotations

from services.referrals import charts


def test_bars_scale_to_the_largest_value() -> None:
    chart = charts.bars("Funnel", [("sent", 10, "10"), ("accepted", 5, "5"), ("completed", 0, "0")])
    sent, accepted, completed = chart.bars
    assert accepted.width == sent.width / 2 and completed.width == 0
    assert sent.y < accepted.y < completed.y and chart.height >= completed.y + completed.height


def test_bars_without_data_draw_nothing() -> None:
    assert charts.bars("Empty", []).bars == []


def test_stacked_columns_add_up_and_share_colours() -> None:
    chart = charts.stacked("By category", [("2030-10", {"A": 2, "B": 1}), ("2030-11", {"B": 3})])
    october, november = chart.columns
    assert (october.total, november.total) == (3, 3)
    assert [s.series for s in october.segments] == ["A", "B"]
    assert october.segments[1].colour == november.segments[0].colour
    # Equal totals, equal heights, all standing on the baseline.
    assert sum(s.height for s in october.segments) == sum(s.height for s in november.segments)
    assert round(october.segments[0].y + october.segments[0].height, 1) == chart.baseline
    assert chart.legend == [("A", charts.PALETTE[0]), ("B", charts.PALETTE[1])]


def test_long_bar_labels_are_cut_to_fit_and_short_ones_kept() -> None:
    name = "Bay Physical Therapy and Sports Rehabilitation (demo)"
    chart = charts.bars("Median time to accept", [(name, 2.0, "2 h"), ("Ana", 1.0, "1 h")], label_width=190)
    long, short = chart.bars
    assert long.label == name and long.short_label.endswith("…")
    assert len(long.short_label) * 7 <= 190 - 12 and name.startswith(long.short_label[:-1])
    assert short.short_label == "Ana"
