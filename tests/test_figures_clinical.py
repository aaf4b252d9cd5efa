"""Clinical figures of issue 20: the KM time axis, the median text and the swimmer's subject IDs."""

from __future__ import annotations

import re

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from gutaxis.clinical.checks import blank_to_missing  # noqa: E402
from gutaxis.clinical.tables import km_plot_table, stack_groupings  # noqa: E402
from gutaxis.plots.clinical import (  # noqa: E402
    SWIMMER_MAX_HEIGHT,
    format_median,
    km_axis_end,
    km_data,
    plot_km,
    plot_swimmer,
    swimmer_data,
)
from gutaxis.plots.style import apply_style  # noqa: E402
from gutaxis.clinical.survival import survival_table  # noqa: E402

STYLE = {
    "font_family": "DejaVu Sans", "font_size": 8, "title_size": 9, "width_single_mm": 89,
    "width_double_mm": 183, "formats": ["png"], "dpi": 100,
    "palette": {"cohort": {"a": "#0072B2", "b": "#E69F00"}},
}
ENDPOINTS = {"PFS2": ("pfs2_months", "pfs2_event")}
GROUPINGS = {"cohort": ["cohort"]}
#: a median with its CI at one decimal: "3.2 (2.6–6.3)", NR for a limit not reached
MEDIAN_TEXT = re.compile(r"^(NR|\d+\.\d \((\d+\.\d|NA)\u2013(\d+\.\d|NR)\))$")


def twenty_patients() -> pd.DataFrame:
    """PFS2 at 1, 2, ..., 20 months, an event for everybody but the patient at 5 (censored).

    Hand-worked axis end: 20 at risk at time 0, so 10 % is 2; just after month k
    20 - k remain, which first falls below 2 at k = 19. Cohort a has the odd times
    (its last at 19: not followed past the end), cohort b the even ones (its 20
    lies beyond the end).
    """
    times = np.arange(1, 21, dtype=float)
    return pd.DataFrame({
        "subject_id": [f"P{i:02d}" for i in range(1, 21)],
        "cohort": ["a" if t % 2 else "b" for t in times],
        "pfs2_months": times,
        "pfs2_event": [0 if t == 5 else 1 for t in times],
    })


def km_tables(subjects: pd.DataFrame):
    subjects = blank_to_missing(subjects.astype(str))
    curves = km_plot_table(subjects, ENDPOINTS, GROUPINGS)
    survival = stack_groupings(survival_table, GROUPINGS, order_by="endpoint", subjects=subjects,
                               endpoints=ENDPOINTS)
    return curves, survival


def curve_axes(fig):
    return [ax for ax in fig.axes if ax.get_ylabel().endswith("probability")]


def test_km_axis_ends_where_fewer_than_ten_percent_remain_at_risk():
    curves, survival = km_tables(twenty_patients())
    assert km_axis_end(curves, "PFS2") == 19.0
    # a quarter: 5 remain just after month 15, 4 (< 5) just after 16
    assert km_axis_end(curves, "PFS2", fraction=0.25) == 16.0
    data = km_data(curves, "cohort", ["a", "b"])
    assert set(data["axis_end"]) == {19.0}
    # the source table holds what is drawn: no row after the axis end, the 21-month tick is gone
    assert data["time"].max() == 19.0
    assert curves.loc[curves["record"] == "at_risk", "time"].max() > 19.0
    # a curve followed past the end is drawn to it at the survival in force: only cohort b needs an
    # end row (its last step before 19 is at 18); a's and the overall curve's last steps are at 19
    ends = data[data["record"] == "end"].set_index("group")
    assert ends.index.tolist() == ["b"] and ends.loc["b", "time"] == 19.0
    b_18 = data[(data["group"] == "b") & (data["record"] == "step") & (data["time"] == 18.0)].iloc[0]
    assert ends.loc["b", "survival"] == pytest.approx(b_18["survival"])
    assert ends.loc["b", "n_risk"] == 1 and ends.loc["b", "n_event"] == 0  # P20 still followed
    apply_style(STYLE)
    fig = plot_km(data, survival, "cohort", STYLE)
    (ax,) = curve_axes(fig)
    assert ax.get_xlim()[1] == pytest.approx(19.0)
    assert max(ax.get_xticks()) <= 19.0
    overall = ax.get_lines()[0]
    assert overall.get_xdata()[-1] == pytest.approx(19.0)
    plt.close(fig)


def test_km_axis_takes_the_configured_limit():
    curves, survival = km_tables(twenty_patients())
    data = km_data(curves, "cohort", max_months=12)
    assert data["time"].max() == 12.0 and set(data["axis_end"]) == {12.0}
    apply_style(STYLE)
    fig = plot_km(data, survival, "cohort", STYLE)
    assert curve_axes(fig)[0].get_xlim()[1] == pytest.approx(12.0)
    plt.close(fig)


def test_km_axis_without_ten_percent_drop_ends_at_the_longest_follow_up():
    subjects = twenty_patients().assign(pfs2_event=0)  # all censored: 1 remains just before 20
    subjects.loc[subjects["pfs2_months"] > 10, "pfs2_months"] = 30.0  # ten followed to 30, censored together
    curves, _ = km_tables(subjects)
    assert km_axis_end(curves, "PFS2") == 30.0


def test_format_median_uses_one_precision_for_every_number():
    assert format_median(3.15, 2.6, 6.3) == "3.2 (2.6\u20136.3)"  # half up on the decimal 3.15, not binary 3.1
    assert format_median(11.0, 9.25, 16.4) == "11.0 (9.3\u201316.4)"  # never "11" beside "9.25"
    assert format_median(6.9, 6.3, np.nan) == "6.9 (6.3\u2013NR)"
    assert format_median(np.nan, 5.0, np.nan) == "NR (5.0\u2013NR)"
    assert format_median(np.nan, np.nan, np.nan) == "NR"
    assert format_median(3.333, 2.0, 4.75, decimals=2) == "3.33 (2.00\u20134.75)"


def test_km_legend_gives_every_median_with_its_ci_at_one_decimal():
    curves, survival = km_tables(twenty_patients())
    apply_style(STYLE)
    fig = plot_km(km_data(curves, "cohort"), survival, "cohort", STYLE)
    texts = [t.get_text() for t in curve_axes(fig)[0].get_legend().get_texts()]
    medians = [t.split(": ", 1)[1] for t in texts if ": " in t]
    assert len(medians) == 3  # all patients, a, b
    assert all(MEDIAN_TEXT.match(m) for m in medians), medians
    rows = survival[(survival["quantity"] == "median") & (survival["group_var"] == "overall")].iloc[0]
    assert medians[0] == format_median(rows["estimate"], rows["ci_low"], rows["ci_high"])
    plt.close(fig)


def swimmer_patients(n: int) -> pd.DataFrame:
    return pd.DataFrame({"subject_id": [f"S{i:03d}" for i in range(n)], "cohort": "a",
                         "best_response": "SD", "treatment_months": np.linspace(1, 20, n).round(2),
                         "treatment_ongoing": 0})


def test_swimmer_ids_are_at_least_the_styles_smallest_font_size():
    apply_style(STYLE)
    smallest = min(plt.rcParams[k] for k in ("xtick.labelsize", "ytick.labelsize", "legend.fontsize"))
    fig = plot_swimmer(swimmer_data(swimmer_patients(48)), STYLE)
    labels = fig.axes[0].get_yticklabels()
    assert len(labels) == 48
    assert min(label.get_fontsize() for label in labels) >= smallest == STYLE["font_size"] - 1
    # rows are at least one line of that text apart, so neighbouring IDs do not overlap
    fig.canvas.draw()
    boxes = sorted((label.get_window_extent().y0, label.get_window_extent().y1) for label in labels)
    assert all(upper[0] >= lower[1] - 0.5 for lower, upper in zip(boxes, boxes[1:]))
    plt.close(fig)


def test_swimmer_leaves_ids_out_rather_than_shrinking_them_when_rows_do_not_fit_a_page():
    apply_style(STYLE)
    fig = plot_swimmer(swimmer_data(swimmer_patients(150)), STYLE)
    ax = fig.axes[0]
    assert len(ax.get_yticklabels()) == 0 and "source table" in ax.get_ylabel()
    assert fig.get_size_inches()[1] <= SWIMMER_MAX_HEIGHT + 1e-9
    plt.close(fig)
