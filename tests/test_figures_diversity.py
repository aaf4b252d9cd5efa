"""Diversity figures of issue 20: α panel per response group, PCoA centroid arrows, Δ precision."""

from __future__ import annotations

import re

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from gutaxis.plots.diversity import (  # noqa: E402
    CENTROID_ARROW,
    SUBJECT_ARROW,
    _fixed,
    metric_decimals,
    paired_alpha_data,
    paired_alpha_panel_data,
    pcoa_arrow_data,
    pcoa_centroids,
    pcoa_source,
    plot_paired_alpha,
    plot_paired_alpha_by_response,
    plot_pcoa_arrows,
)
from gutaxis.plots.style import apply_style  # noqa: E402

STYLE = {
    "font_family": "DejaVu Sans", "font_size": 8, "title_size": 9, "width_single_mm": 89,
    "width_double_mm": 183, "formats": ["png"], "dpi": 100,
    "palette": {"response": {"responder": "#009E73", "non_responder": "#D55E00", "not_evaluable": "#999999"}},
}
#: a Δ with its CI as the figures print it: "Δ +0.25 [0.03, 0.51]"
DELTA = re.compile(r"\u0394 ([+\u2212]?\d+(?:\.(\d+))?) \[([\u2212]?\d+(?:\.(\d+))?), ([\u2212]?\d+(?:\.(\d+))?)\]")


def _tests_row(metric, group_by, group, n, median_pre, median_post, hl, low, high, p):
    return {"contrast": "c", "pre": "pre", "post": "post", "metric": metric, "group_by": group_by, "group": group,
            "n_pairs": n, "median_pre": median_pre, "median_post": median_post, "hl_estimate": hl,
            "ci_low": low, "ci_high": high, "p_value": p}


def alpha_tables():
    """Ten responders rising by 0.3, ten non-responders falling by 0.1, one not evaluable; the
    tests table holds the issue's mixed magnitudes (+0.0072 beside -0.1)."""
    rows = []
    for i in range(21):
        response = "responder" if i < 10 else "non_responder" if i < 20 else ""
        base = 3.0 + 0.05 * i
        change = 0.3 if i < 10 else -0.1
        for timepoint, value in (("pre", base), ("post", base + change)):
            rows.append({"sample_id": f"S{i}_{timepoint}", "subject_id": f"S{i}", "timepoint": timepoint,
                         "cohort": "a" if i % 2 else "b", "response": response, "metric": "shannon",
                         "value": value, "reason": ""})
    alpha = pd.DataFrame(rows)
    tests = pd.DataFrame([
        _tests_row("shannon", "overall", "all", 21, 3.5, 3.55, 0.0072, -0.11, 0.23, 0.47),
        _tests_row("shannon", "response", "responder", 10, 3.225, 3.525, 0.25, 0.0325, 0.51, 0.033),
        _tests_row("shannon", "response", "non_responder", 10, 3.725, 3.625, -0.1, -0.35, 0.13, 0.34),
        _tests_row("shannon", "cohort", "a", 10, 3.5, 3.6, 0.23, -0.17, 0.59, 0.23),
        _tests_row("shannon", "cohort", "b", 11, 3.5, 3.5, -0.015, -0.26, 0.24, 0.9),
    ])
    return alpha, tests


def _texts(fig) -> list[str]:
    return [t.get_text() for t in fig.findobj(matplotlib.text.Text)]


def test_metric_decimals_give_the_largest_value_two_significant_digits():
    assert metric_decimals([0.0072, -0.1, 0.59, -0.31]) == 2
    assert metric_decimals([5, 3, 7.5, 10.5, 13]) == 0
    assert metric_decimals([0.0017, -0.0245, 0.0597]) == 3
    assert metric_decimals([np.nan, 0.0]) == 2  # nothing to go by
    assert [_fixed(x, 2) for x in (0.0072, -0.1, 0.015, -0.004)] == ["+0.01", "\u22120.10", "+0.02", "0.00"]
    assert _fixed(7.5, 0, sign=False) == "8" and _fixed(-0.5, 0) == "\u22121"


@pytest.mark.parametrize("which", ["module", "panel"])
def test_every_delta_of_a_metric_has_the_same_number_of_decimals(which):
    apply_style(STYLE)
    alpha, tests = alpha_tables()
    data = paired_alpha_data(alpha, ["shannon"], "pre", "post")
    if which == "module":
        fig = plot_paired_alpha(data, tests, ["shannon"], ["a", "b"], STYLE, pre="pre", post="post", contrast="c")
    else:
        panel = paired_alpha_panel_data(data, tests, "shannon", contrast="c")
        fig = plot_paired_alpha_by_response(panel, tests, "shannon", STYLE, pre="pre", post="post", contrast="c")
    found = [m for text in _texts(fig) for m in DELTA.finditer(text)]
    plt.close(fig)
    assert len(found) >= 3
    decimals = {len(m.group(g) or "") for m in found for g in (2, 4, 6)}
    assert decimals == {2}
    numbers = {m.group(1) for m in found}
    assert "+0.01" in numbers and "\u22120.10" in numbers  # the issue's +0.0072 and -0.1


def test_alpha_panel_has_one_axis_per_response_group_with_the_tables_median_path_bold():
    apply_style(STYLE)
    alpha, tests = alpha_tables()
    data = paired_alpha_data(alpha, ["shannon"], "pre", "post")
    panel = paired_alpha_panel_data(data, tests, "shannon", contrast="c")
    # source: every subject once, then one median row per tested group, read from the tests table
    assert (panel["record"] == "subject").sum() == 21
    medians = panel[panel["record"] == "group_median"].set_index("panel")
    assert medians.index.tolist() == ["responder", "non_responder"]
    assert medians.loc["responder", ["pre_value", "post_value"]].tolist() == [3.225, 3.525]
    fig = plot_paired_alpha_by_response(panel, tests, "shannon", STYLE, pre="pre", post="post", contrast="c")
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title().split(" (")[0] for ax in axes] == ["Responders", "Non-responders", "Not evaluable"]
    assert [ax.get_title().split(" (")[1] for ax in axes] == ["n = 10)", "n = 10)", "n = 1)"]
    for ax, level in zip(axes[:2], ["responder", "non_responder"]):
        (median,) = [line for line in ax.get_lines() if line.get_gid() == "group-median"]
        assert list(median.get_ydata()) == medians.loc[level, ["pre_value", "post_value"]].tolist()
        subject_lines = ax.collections[0]
        assert median.get_linewidth() >= 4 * subject_lines.get_linewidths()[0]
        assert subject_lines.get_alpha() < 0.5
    assert not [line for line in axes[2].get_lines() if line.get_gid() == "group-median"]  # NE: no test
    plt.close(fig)


def pcoa_tables():
    """Three responders moving +2 on PC1, three non-responders moving -1 on PC2, one not evaluable."""
    rows = []
    moves = {"responder": (2.0, 0.0), "non_responder": (0.0, -1.0), "": (1.0, 1.0)}
    for i, response in enumerate(["responder"] * 3 + ["non_responder"] * 3 + [""]):
        x0, y0 = float(i), float(i % 3)
        dx, dy = moves[response]
        for timepoint, (x, y) in (("pre", (x0, y0)), ("post", (x0 + dx, y0 + dy))):
            rows.append({"sample_id": f"S{i}_{timepoint}", "subject_id": f"S{i}", "timepoint": timepoint,
                         "cohort": "a", "response": response, "PC1": x, "PC2": y})
    rows.append({"sample_id": "S9_pre", "subject_id": "S9", "timepoint": "pre", "cohort": "a",
                 "response": "responder", "PC1": 50.0, "PC2": 50.0})  # unpaired: not in the centroid
    coordinates = pd.DataFrame(rows)
    axes = pd.DataFrame({"axis": ["PC1", "PC2"], "percent_explained": [30.0, 20.0]})
    permanova = pd.DataFrame({"contrast": ["c"], "test": ["time_within_subject"], "term": ["timepoint"],
                              "pseudo_f": [3.0], "r2": [0.1], "p_value": [0.01], "permutations": [999]})
    return coordinates, axes, permanova


def test_pcoa_centroids_are_the_means_of_the_paired_subjects():
    coordinates, _, _ = pcoa_tables()
    data = pcoa_arrow_data(coordinates, [1, 2], "pre", "post")
    centroids = pcoa_centroids(data, "pre", "post").set_index(["response", "timepoint"])
    # responders S0-S2 at x 0, 1, 2 and y 0, 1, 2; S9 (unpaired, at 50) left out
    assert centroids.loc[("responder", "pre"), ["x", "y"]].tolist() == [1.0, 1.0]
    assert centroids.loc[("responder", "post"), ["x", "y"]].tolist() == [3.0, 1.0]
    assert centroids.loc[("non_responder", "post"), ["x", "y"]].tolist() == [4.0, 0.0]
    assert centroids.loc[("responder", "pre"), "n_subjects"] == 3
    # one not-evaluable subject: no centroid of its own
    assert "not_evaluable" not in centroids.index.get_level_values(0)
    source = pcoa_source(data, centroids.reset_index())
    assert source["record"].value_counts().to_dict() == {"sample": 15, "centroid": 4}


def test_pcoa_draws_bold_centroid_arrows_over_light_subject_arrows():
    apply_style(STYLE)
    coordinates, axes, permanova = pcoa_tables()
    data = pcoa_arrow_data(coordinates, [1, 2], "pre", "post")
    fig = plot_pcoa_arrows(data, axes, permanova, axes_pair=[1, 2], metric="robust_aitchison", pre="pre",
                           post="post", style=STYLE, contrast="c")
    ax = fig.axes[0]
    subject = [t for t in ax.texts if t.get_gid() == "subject-arrow"]
    centroid = [t for t in ax.texts if t.get_gid() == "centroid-arrow"]
    assert len(subject) == 7 and len(centroid) == 2  # every paired subject; R and NR groups
    arrow_of = {tuple(np.round(t.xy, 6)): t for t in centroid}
    assert set(arrow_of) == {(3.0, 1.0), (4.0, 0.0)}  # heads at the post centroids
    thin = max(t.arrow_patch.get_linewidth() for t in subject)
    bold = min(t.arrow_patch.get_linewidth() for t in centroid)
    assert bold >= 4 * thin
    assert max(t.arrow_patch.get_alpha() for t in subject) <= 0.5 < min(t.arrow_patch.get_alpha() for t in centroid)
    assert SUBJECT_ARROW["lw"] < CENTROID_ARROW["lw"]
    assert "Robust Aitchison PCoA" in ax.get_title()
    plt.close(fig)
