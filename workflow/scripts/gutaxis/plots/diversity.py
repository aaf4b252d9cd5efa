"""Diversity figures: paired α lines, PCoA with within-subject arrows, within-subject shift by response.

Every function takes the result tables of the diversity rules and draws them; test
results are read from the tables, never recomputed. Imports only numpy, pandas
and matplotlib (the plots environment).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from gutaxis.plots.style import figure_size, mark_title, paired_lines, palette, statistic_text
from gutaxis.io.settings import with_overrides
from gutaxis.io.tables import decimal_text

RESPONSE_LEVELS = ["responder", "non_responder", "not_evaluable"]
RESPONSE_LABELS = {"responder": "Responder", "non_responder": "Non-responder", "not_evaluable": "Not evaluable",
                   "all": "All subjects"}
RESPONSE_SHORT = {"responder": "R", "non_responder": "NR", "not_evaluable": "NE", "all": "All"}
#: the one group of a study without response (no responder / not-evaluable split)
NO_RESPONSE_COLOUR = "#444444"
ALPHA_LABELS = {
    "shannon": "Shannon index H (nats)",
    "gini_simpson": "Gini\u2013Simpson 1 \u2212 \u03a3p\u00b2",
    "inverse_simpson": "Inverse Simpson 1/\u03a3p\u00b2",
    "observed_richness": "Observed richness (features)",
    "pielou_evenness": "Pielou evenness H/ln S",
    "chao1": "Chao1 (features)",
    "rarefied_richness": "Rarefied richness (features)",
}
BETA_LABELS = {
    "braycurtis": "Bray\u2013Curtis",
    "jaccard": "Jaccard",
    "aitchison": "Aitchison",
    "robust_aitchison": "Robust Aitchison",
}


def format_p(p) -> str:
    """``p = 0.47`` / ``p = 0.012`` / ``p = 3.1e\u221205`` / ``p = NA``."""
    return statistic_text("p", p, ((0.1, 2), (0.001, 3)))


def metric_decimals(values) -> int:
    """Decimals of every Δ and CI limit of one metric: two significant digits for the largest.

    With :math:`m = \\max |x|` over the finite, non-zero values, ``max(0, 1 -
    floor(log10 m))`` decimals: Shannon Δs up to 0.59 get 2 (``+0.01``, ``\u22120.31``),
    richness up to 13 gets 0 (``+10``), Gini-Simpson up to 0.06 gets 3. One number of
    decimals for the whole metric, so ``+0.0072`` never stands beside ``\u22120.1``.
    Two when there is no value.
    """
    v = np.abs(np.asarray(pd.to_numeric(pd.Series(list(np.ravel(values)), dtype=object), errors="coerce"),
                          dtype=float))
    v = v[np.isfinite(v) & (v > 0)]
    if not v.size:
        return 2
    return max(0, 1 - int(np.floor(np.log10(v.max()))))


def _fixed(x, decimals: int, sign: bool = True) -> str:
    """``x`` at ``decimals`` decimals with a typographic minus (``+0.12``, ``\u22120.44``); NA when missing.

    A value that rounds to zero keeps no sign (``0.00``, not ``\u22120.00``).
    """
    text = decimal_text(x, decimals)  # half away from zero (7.5 -> 8, 0.015 -> 0.02)
    if text is None:
        return "NA"
    value = Decimal(text)
    if value == 0:
        value = abs(value)
    text = f"{value:+f}" if sign and value != 0 else f"{value:f}"
    return text.replace("-", "\u2212")


def _number(x, digits: int = 2, sign: bool = True) -> str:
    """Short number with a typographic minus (``+0.12``, ``\u22120.44``)."""
    if x is None or not np.isfinite(float(x)):
        return "NA"
    text = f"{float(x):+.{digits}g}" if sign else f"{float(x):.{digits}g}"
    return text.replace("-", "\u2212")


def _response_key(values: pd.Series, response: bool = True) -> pd.Series:
    """responder / non_responder / not_evaluable; ``all`` for every subject of a study
    without response (there is nobody to call not evaluable)."""
    values = values.fillna("").astype(str)
    if not response:
        return pd.Series("all", index=values.index)
    return values.where(values.isin(["responder", "non_responder"]), "not_evaluable")


def _levels_and_colours(style: dict, response: bool) -> tuple[list[str], dict]:
    if not response:
        return ["all"], {"all": NO_RESPONSE_COLOUR}
    return RESPONSE_LEVELS, palette(style, "response", RESPONSE_LEVELS)


#: per-subject lines and arrows recede behind the group summaries: thin and light
SUBJECT_LW, SUBJECT_ALPHA = 0.5, 0.35

# ---------------------------------------------------------------------------
# paired α


def paired_alpha_data(alpha: pd.DataFrame, metrics, pre: str, post: str, response: bool = True) -> pd.DataFrame:
    """One row per subject and metric with the pre and post value (the data of the paired figure).

    Parameters
    ----------
    alpha : DataFrame
        ``results/diversity/<modality>/alpha.tsv`` (tidy: sample_id, subject_id,
        timepoint, cohort, response, metric, value, reason).
    metrics : list of str
    pre, post : str
        Timepoints of the contrast.
    response : bool
        False in a study without response (every subject's response is ``all``).

    Returns
    -------
    DataFrame
        ``metric, subject_id, cohort, response, pre_sample, post_sample, pre_value,
        post_value`` for subjects with both values, sorted by metric order then subject.
    """
    rows = alpha[alpha["metric"].isin(metrics) & alpha["timepoint"].isin([pre, post])
                 & (alpha["subject_id"].fillna("").astype(str) != "")].copy()
    rows["value"] = pd.to_numeric(rows["value"], errors="coerce")
    rows = rows[rows["value"].notna()]
    wide = rows.pivot_table(index=["metric", "subject_id"], columns="timepoint",
                            values=["value", "sample_id"], aggfunc="first")
    columns = ["metric", "subject_id", "cohort", "response", "pre_sample", "post_sample", "pre_value",
               "post_value"]
    if wide.empty or ("value", pre) not in wide.columns or ("value", post) not in wide.columns:
        return pd.DataFrame(columns=columns)
    out = pd.DataFrame({
        "pre_sample": wide[("sample_id", pre)], "post_sample": wide[("sample_id", post)],
        "pre_value": wide[("value", pre)].astype(float), "post_value": wide[("value", post)].astype(float),
    }).dropna().reset_index()
    info = rows.drop_duplicates("subject_id").set_index("subject_id")
    out["cohort"] = out["subject_id"].map(info["cohort"]).fillna("").astype(str)
    out["response"] = _response_key(out["subject_id"].map(info["response"]), response)
    order = {m: i for i, m in enumerate(metrics)}
    out = out.assign(_o=out["metric"].map(order)).sort_values(["_o", "subject_id"], kind="stable")
    return out[columns].reset_index(drop=True)


def _test_line(test: pd.Series | None, label: str, split: bool = False, decimals: int = 2) -> str:
    """``R: Δ +0.21 [0.05, 0.40] p = 0.003`` from one row of alpha_tests.tsv (p on a new line with `split`).

    Δ and its CI at ``decimals`` decimals (:func:`metric_decimals` of the metric)."""
    prefix = f"{label}: " if label else ""
    if test is None or int(test["n_pairs"]) == 0:
        return f"{prefix}no pairs"
    if not np.isfinite(float(test["p_value"])):
        return f"{prefix}no change (n = {int(test['n_pairs'])})"
    return (f"{prefix}\u0394 {_fixed(test['hl_estimate'], decimals)} [{_fixed(test['ci_low'], decimals, False)}, "
            f"{_fixed(test['ci_high'], decimals, False)}]" + ("\n" if split else " ") + format_p(test["p_value"]))


def _metric_tests(tests: pd.DataFrame, metric: str) -> pd.DataFrame:
    return tests[tests["metric"] == metric] if "metric" in tests.columns else tests.iloc[:0]


def _median_path(test: pd.Series | None):
    """(median pre, median post) of a test row of alpha_tests.tsv, or None."""
    if test is None or int(test["n_pairs"]) == 0:
        return None
    pre, post = float(test["median_pre"]), float(test["median_post"])
    return (pre, post) if np.isfinite(pre) and np.isfinite(post) else None


def _draw_median_path(ax, path, colour: str) -> None:
    """The group's median pre -> median post, bold over the thin subject lines (white halo)."""
    from matplotlib import patheffects

    (line,) = ax.plot([0.0, 1.0], path, color=colour, lw=2.4, marker="o", ms=4.5, mec="white", mew=0.6,
                      zorder=5, solid_capstyle="round")
    line.set_path_effects([patheffects.Stroke(linewidth=3.6, foreground="white"), patheffects.Normal()])
    line.set_gid("group-median")


def plot_paired_alpha(data: pd.DataFrame, tests: pd.DataFrame, metrics, cohorts, style: dict,
                      pre: str = "pre", post: str = "post", title: str = "", contrast: str | None = None,
                      response: bool = True):
    """Paired α figure: one line per subject (pre → post), rows = metrics, columns = all + cohorts.

    Parameters
    ----------
    data : DataFrame
        :func:`paired_alpha_data` output.
    tests : DataFrame
        ``alpha_tests.tsv``: the Wilcoxon signed-rank p and Hodges-Lehmann Δ
        [CI] of the panel's group are written in it (overall, responders and
        non-responders in the first column; the cohort in the others).
    metrics, cohorts : list of str
    style : dict
    pre, post : str
        Timepoint labels of the x axis.
    title : str
    contrast : str, optional
        Selects the rows of `tests` (column ``contrast``).
    response : bool
        False in a study without response: one colour, no responder test lines
        and no response legend.

    Returns
    -------
    matplotlib Figure
    """
    if contrast is not None and "contrast" in tests.columns:
        tests = tests[tests["contrast"] == contrast]
    present = [c for c in cohorts if c in set(data["cohort"])]
    present += sorted(set(data["cohort"]) - set(present) - {""})
    columns = ["all"] + present
    metrics = [m for m in metrics if m in set(data["metric"])] or list(metrics)
    levels, colours = _levels_and_colours(style, response)
    width, _ = figure_size(style, "double")
    n_rows = max(1, len(metrics))
    # the first column carries three test lines (all, responders, non-responders): wider
    fig, axes = plt.subplots(n_rows, len(columns), figsize=(width, 2.5 * n_rows + 0.5), squeeze=False,
                             sharey="row", gridspec_kw={"width_ratios": [1.5] + [1.0] * len(present)})
    font = plt.rcParams["font.size"] - 1.5

    def find(metric, group_by, group):
        hit = tests[(tests["metric"] == metric) & (tests["group_by"] == group_by) & (tests["group"] == group)]
        return hit.iloc[0] if len(hit) else None

    for r, metric in enumerate(metrics):
        rows = data[data["metric"] == metric]
        of_metric = _metric_tests(tests, metric)
        decimals = metric_decimals(of_metric[["hl_estimate", "ci_low", "ci_high"]].to_numpy())
        values = rows[["pre_value", "post_value"]].to_numpy(float)
        if values.size:
            # one y range per row (shared axis), with room above the data for three lines of text
            low, high = float(np.nanmin(values)), float(np.nanmax(values))
            span = (high - low) or max(abs(high), 1.0) * 0.1
            axes[r, 0].set_ylim(low - 0.05 * span, high + 0.55 * span)
        for c, column in enumerate(columns):
            ax = axes[r, c]
            panel = rows if column == "all" else rows[rows["cohort"] == column]
            for level in levels:
                part = panel[panel["response"] == level]
                if part.empty:
                    continue
                paired_lines(ax, [0.0, 1.0], part[["pre_value", "post_value"]].to_numpy(float), colours[level],
                             lw=SUBJECT_LW, alpha=SUBJECT_ALPHA, ms=1.8)
            if column == "all":
                lines = [(_test_line(find(metric, "overall", "all"), "All", decimals=decimals), "black")]
                for level, short in (("responder", "R"), ("non_responder", "NR")) if response else ():
                    lines.append((_test_line(find(metric, "response", level), short, decimals=decimals),
                                  colours[level]))
                    path = _median_path(find(metric, "response", level))
                    if path is not None:
                        _draw_median_path(ax, path, colours[level])
                overall_path = _median_path(find(metric, "overall", "all"))
                if not response and overall_path is not None:
                    _draw_median_path(ax, overall_path, NO_RESPONSE_COLOUR)
                ax.set_title(f"All subjects (n = {len(panel)})")
            else:
                lines = [(text, "black") for text in
                         _test_line(find(metric, "cohort", column), "", split=True, decimals=decimals).split("\n")]
                path = _median_path(find(metric, "cohort", column))
                if path is not None:
                    _draw_median_path(ax, path, "#000000")
                ax.set_title(f"{column} (n = {len(panel)})")
            for k, (text, colour) in enumerate(lines):
                ax.text(0.02, 0.99 - 0.09 * k, text, transform=ax.transAxes, va="top", ha="left",
                        fontsize=font, color=colour)
            ax.set_xlim(-0.3, 1.3)
            ax.set_xticks([0, 1])
            ax.set_xticklabels([pre, post])
            if c == 0:
                ax.set_ylabel(ALPHA_LABELS.get(metric, metric))
    short = {"responder": " (R)", "non_responder": " (NR)", "not_evaluable": ""}
    handles = [Line2D([], [], color=colours[level], marker="o", ms=3, lw=1,
                      label=RESPONSE_LABELS[level] + short[level])
               for level in levels if response and (data["response"] == level).any()]
    if len(data):
        handles.append(Line2D([], [], color="black", lw=2.4, marker="o", ms=4,
                              label="Median of the panel's group" if response else "Median"))
    if handles:
        fig.legend(handles=handles, loc="lower center", ncol=len(handles), frameon=False,
                   bbox_to_anchor=(0.5, -0.01))
    fig.suptitle(title + ("\n" if title else "") + "Wilcoxon signed-rank on post \u2212 pre; "
                 "\u0394 = Hodges\u2013Lehmann estimate [CI]", fontsize=plt.rcParams["axes.titlesize"])
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return fig


def panel_metric(data: pd.DataFrame, metrics) -> str:
    """The metric of the main-figure α panel: the first of `metrics` with values in `data`
    (:func:`paired_alpha_data`), else the first of `metrics`."""
    present = set(data["metric"])
    return ([m for m in metrics if m in present] or list(metrics))[0]


def paired_alpha_panel_data(data: pd.DataFrame, tests: pd.DataFrame, metric: str, contrast: str | None = None,
                            response: bool = True) -> pd.DataFrame:
    """What the main-figure α panel draws: each subject's pre/post value and each group's median path.

    Parameters
    ----------
    data : DataFrame
        :func:`paired_alpha_data` output.
    tests : DataFrame
        ``alpha_tests.tsv``; the medians and the test of each response group (rows
        ``group_by == response``; ``overall`` in a study without response) are read
        from it, never recomputed.
    metric : str
    contrast : str, optional
        Selects the rows of `tests`.
    response : bool

    Returns
    -------
    DataFrame
        The subject rows of `metric` (``record = subject``) followed by one
        ``record = group_median`` row per group with a test (``pre_value`` =
        ``median_pre``, ``post_value`` = ``median_post``, with ``n_pairs``,
        ``hl_estimate``, ``ci_low``, ``ci_high``, ``p_value``); ``panel`` is the
        response group (responder, non_responder, not_evaluable; ``all`` without
        response) in drawing order.
    """
    if contrast is not None and "contrast" in tests.columns:
        tests = tests[tests["contrast"] == contrast]
    subjects = data[data["metric"] == metric].assign(record="subject")
    subjects.insert(0, "panel", subjects["response"])
    levels = RESPONSE_LEVELS if response else ["all"]
    of_metric = _metric_tests(tests, metric)
    medians = []
    for level in levels:
        group_by, group = ("response", level) if response else ("overall", "all")
        hit = of_metric[(of_metric["group_by"] == group_by) & (of_metric["group"] == group)]
        if len(hit) and _median_path(hit.iloc[0]) is not None:
            row = hit.iloc[0]
            medians.append({"panel": level, "metric": metric, "response": level, "record": "group_median",
                            "pre_value": float(row["median_pre"]), "post_value": float(row["median_post"]),
                            **{k: row[k] for k in ("n_pairs", "hl_estimate", "ci_low", "ci_high", "p_value")}})
    out = pd.concat([subjects, pd.DataFrame(medians)], ignore_index=True, sort=False)
    order = {level: i for i, level in enumerate(levels)}
    out = out[out["panel"].isin(levels)]
    out = out.assign(_p=out["panel"].map(order), _r=(out["record"] != "subject").astype(int))
    return out.sort_values(["_p", "_r"], kind="stable").drop(columns=["_p", "_r"]).reset_index(drop=True)


def plot_paired_alpha_by_response(panel_data: pd.DataFrame, tests: pd.DataFrame, metric: str, style: dict,
                                  pre: str = "pre", post: str = "post", title: str = "",
                                  contrast: str | None = None, response: bool = True):
    """Main-figure α panel: one panel per response group, thin subject lines, the group median bold.

    Each panel draws its subjects' pre → post lines thin and light and the group's
    median pre → median post path bold (both medians from ``alpha_tests.tsv``), with
    the group's Hodges–Lehmann Δ [CI] and Wilcoxon p; the overall test heads the
    figure. Δ and CI limits share :func:`metric_decimals` of the metric. A group
    without a test (not evaluable) is drawn without a median path.

    Parameters
    ----------
    panel_data : DataFrame
        :func:`paired_alpha_panel_data` output (also the figure's source table).
    tests : DataFrame
        ``alpha_tests.tsv`` (for the overall test).

    Returns
    -------
    matplotlib Figure
    """
    if contrast is not None and "contrast" in tests.columns:
        tests = tests[tests["contrast"] == contrast]
    of_metric = _metric_tests(tests, metric)
    decimals = metric_decimals(of_metric[["hl_estimate", "ci_low", "ci_high"]].to_numpy())
    levels, colours = _levels_and_colours(style, response)
    panels = [lv for lv in levels if (panel_data["panel"] == lv).any()] or levels[:1]
    width, _ = figure_size(style, "double" if len(panels) > 1 else "single")
    # the few not-evaluable subjects get a narrower panel
    ratios = [0.7 if lv == "not_evaluable" else 1.0 for lv in panels]
    fig, axes = plt.subplots(1, len(panels), figsize=(width, 2.9), squeeze=False, sharey="row",
                             gridspec_kw={"width_ratios": ratios})
    subjects = panel_data[panel_data["record"] == "subject"]
    values = panel_data[["pre_value", "post_value"]].to_numpy(float)
    font = plt.rcParams["font.size"] - 1
    for c, level in enumerate(panels):
        ax = axes[0, c]
        part = subjects[subjects["panel"] == level]
        paired_lines(ax, [0.0, 1.0], part[["pre_value", "post_value"]].to_numpy(float), colours[level],
                     lw=SUBJECT_LW + 0.1, alpha=SUBJECT_ALPHA, ms=2.0)
        median = panel_data[(panel_data["panel"] == level) & (panel_data["record"] == "group_median")]
        if len(median):
            row = median.iloc[0]
            _draw_median_path(ax, (row["pre_value"], row["post_value"]), colours[level])
            text = _test_line(row, "", split=True, decimals=decimals)
        else:
            text = "not tested"
        ax.text(0.03, 0.98, text, transform=ax.transAxes, va="top", ha="left", fontsize=font,
                color=colours[level] if level != "not_evaluable" else "#444444")
        name = RESPONSE_LABELS[level] if response else "All subjects"
        name = {"responder": "Responders", "non_responder": "Non-responders"}.get(level, name)
        ax.set_title(f"{name} (n = {len(part)})", color=colours[level] if response else "black")
        ax.set_xlim(-0.25, 1.25)
        ax.set_xticks([0, 1])
        ax.set_xticklabels([pre, post])
        if c == 0:
            ax.set_ylabel(ALPHA_LABELS.get(metric, metric))
    if values.size and np.isfinite(values).any():
        low, high = float(np.nanmin(values)), float(np.nanmax(values))
        span = (high - low) or max(abs(high), 1.0) * 0.1
        axes[0, 0].set_ylim(low - 0.05 * span, high + 0.3 * span)
    overall = of_metric[(of_metric["group_by"] == "overall") & (of_metric["group"] == "all")]
    head = ""
    if response and len(overall):
        head = f"\nAll subjects (n = {int(overall.iloc[0]['n_pairs'])}): " + _test_line(
            overall.iloc[0], "", decimals=decimals)
    fig.suptitle(title + ("\n" if title else "") + "Wilcoxon signed-rank on post \u2212 pre; "
                 "\u0394 = Hodges\u2013Lehmann estimate [CI]; bold: group median" + head,
                 fontsize=plt.rcParams["axes.titlesize"])
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------
# PCoA with arrows


def pcoa_arrow_data(coordinates: pd.DataFrame, axes_pair, pre: str, post: str,
                    response: bool = True) -> pd.DataFrame:
    """Coordinates of the `pre` and `post` samples on two axes, with the subject's pairing.

    Parameters
    ----------
    coordinates : DataFrame
        ``pcoa/<metric>.tsv`` (sample metadata + PC1..PCk).
    axes_pair : (int, int)
        1-based axes.
    pre, post : str

    Returns
    -------
    DataFrame
        ``sample_id, subject_id, timepoint, cohort, response, paired, x, y`` with
        ``paired`` True when the subject has both samples; sorted by subject and time.
        Empty when the coordinates have no such axes (a metric not computed).
    """
    x_name, y_name = (f"PC{a}" for a in axes_pair)
    columns = ["sample_id", "subject_id", "timepoint", "cohort", "response", "paired", "x", "y"]
    if x_name not in coordinates.columns or y_name not in coordinates.columns:
        return pd.DataFrame(columns=columns)
    rows = coordinates[coordinates["timepoint"].isin([pre, post])].copy()
    rows = rows[rows["subject_id"].fillna("").astype(str) != ""]
    both = rows.groupby("subject_id")["timepoint"].transform("nunique") == 2
    out = pd.DataFrame({
        "sample_id": rows["sample_id"].astype(str), "subject_id": rows["subject_id"].astype(str),
        "timepoint": rows["timepoint"].astype(str), "cohort": rows["cohort"].fillna("").astype(str),
        "response": _response_key(rows["response"], response), "paired": both.to_numpy(),
        "x": rows[x_name].astype(float), "y": rows[y_name].astype(float),
    })
    out["_t"] = (out["timepoint"] == post).astype(int)
    return out.sort_values(["subject_id", "_t"], kind="stable").drop(columns="_t").reset_index(drop=True)


#: fewest paired subjects for a group's centroid arrow (fewer: the subjects' own arrows say it all)
MIN_CENTROID_SUBJECTS = 3


def pcoa_centroids(data: pd.DataFrame, pre: str, post: str, min_subjects: int = MIN_CENTROID_SUBJECTS
                   ) -> pd.DataFrame:
    """Each response group's centroid at `pre` and at `post` on the drawn axes (its paired subjects).

    The centroid of a group at a timepoint is the mean of its subjects' coordinates,
    :math:`\\bar z_{g,t} = n_g^{-1} \\sum_{i \\in g} z_{i,t}` on the two drawn axes, over
    the subjects with both samples only, so the arrow from the pre to the post
    centroid is the group's mean within-subject displacement in the plane (Anderson
    2006, Biometrics 62:245, for centroids in principal coordinate space). A display
    summary of the PCoA table; no test. Groups with fewer than ``min_subjects``
    paired subjects (typically the not-evaluable few) get no centroid.

    Parameters
    ----------
    data : DataFrame
        :func:`pcoa_arrow_data` output.

    Returns
    -------
    DataFrame
        ``record = centroid, response, timepoint, n_subjects, x, y``: two rows
        (pre, post) per response group with paired subjects, in
        :data:`RESPONSE_LEVELS` order (``all`` first).
    """
    columns = ["record", "response", "timepoint", "n_subjects", "x", "y"]
    paired = data[data["paired"].astype(bool)]
    rows = []
    for level in ["all"] + RESPONSE_LEVELS:
        part = paired[paired["response"] == level]
        if part["subject_id"].nunique() < max(1, min_subjects):
            continue
        for timepoint in (pre, post):
            at = part[part["timepoint"] == timepoint]
            rows.append({"record": "centroid", "response": level, "timepoint": timepoint,
                         "n_subjects": int(at["subject_id"].nunique()), "x": float(at["x"].mean()),
                         "y": float(at["y"].mean())})
    return pd.DataFrame(rows, columns=columns)


def pcoa_source(data: pd.DataFrame, centroids: pd.DataFrame) -> pd.DataFrame:
    """The PCoA figure's source table: the samples (``record = sample``), then the group centroids."""
    return pd.concat([data.assign(record="sample"), centroids], ignore_index=True, sort=False)


@dataclass(frozen=True)
class PcoaView:
    """What a PCoA figure shows and how it is labelled.

    Attributes
    ----------
    axes_pair : pair of int
        The principal coordinates on x and y (``diversity.pcoa_axes``, 1-based).
    metric : str
        The β metric (its label heads the title).
    style : dict
        The figure style (:mod:`gutaxis.plots.style`).
    title : str
        Appended to the title (the modality and contrast).
    response : bool
        Colour by response (else one colour, no response legend).
    pre, post : str
        The timepoints of the arrows (the baseline figure: `pre` is the baseline).
    contrast : str or None
        The contrast whose PERMANOVA rows the title quotes (None: every row).
    """

    axes_pair: Sequence[int] = (1, 2)
    metric: str = ""
    style: dict = field(default_factory=dict)
    title: str = ""
    response: bool = True
    pre: str = ""
    post: str = ""
    contrast: str | None = None

    @classmethod
    def from_params(cls, params, metric: str) -> PcoaView:
        """The view of a plot rule: ``params`` has ``axes, style, title, response`` and either
        ``contrast`` (``name, pre, post``) or ``baseline``."""
        contrast = params.get("contrast") or {"name": None, "pre": params.get("baseline", ""), "post": ""}
        return cls(axes_pair=tuple(params["axes"]), metric=metric, style=params["style"], title=params["title"],
                   response=bool(params["response"]), pre=contrast["pre"], post=contrast["post"],
                   contrast=contrast["name"])

    def heading(self) -> str:
        """``<metric label> PCoA, <title>``: the first line of the figure's title."""
        return f"{BETA_LABELS.get(self.metric, self.metric)} PCoA{(', ' + self.title) if self.title else ''}"


def _not_computed_figure(view: PcoaView):
    """A figure that says the metric was not computed (undefined for some sample pairs)."""
    fig, ax = plt.subplots(figsize=figure_size(view.style, "single", 1.1))
    ax.axis("off")
    label = BETA_LABELS.get(view.metric, view.metric)
    ax.text(0.5, 0.5, f"{label}: not computed\n(undefined for some sample pairs;\nsee beta_metrics.tsv)",
            ha="center", va="center", transform=ax.transAxes)
    mark_title(ax.set_title(view.heading(), fontsize=plt.rcParams["font.size"]))
    return fig


def _finish_pcoa(fig, ax) -> None:
    """Sparse ticks and the origin lines of a PCoA, then the layout."""
    ax.xaxis.set_major_locator(MaxNLocator(5))
    ax.yaxis.set_major_locator(MaxNLocator(6))
    ax.axhline(0, color="#DDDDDD", lw=0.5, zorder=0)
    ax.axvline(0, color="#DDDDDD", lw=0.5, zorder=0)
    fig.tight_layout()


#: arrows of the PCoA: per subject thin and light, per group centroid bold
SUBJECT_ARROW = {"lw": 0.45, "alpha": 0.3, "mutation_scale": 4}
CENTROID_ARROW = {"lw": 2.6, "alpha": 1.0, "mutation_scale": 13}


def plot_pcoa_arrows(data: pd.DataFrame, axes: pd.DataFrame, permanova: pd.DataFrame,
                     settings: PcoaView | None = None, centroids: pd.DataFrame | None = None, **overrides):
    """PCoA of the pre and post samples: thin per-subject arrows, bold arrows of the group centroids.

    Each subject's pre → post arrow is thin and light (:data:`SUBJECT_ARROW`, gid
    ``subject-arrow``); each response group's arrow from its pre to its post
    centroid (:func:`pcoa_centroids`) is bold (:data:`CENTROID_ARROW`, gid
    ``centroid-arrow``) and carries the message. The title gives the PERMANOVA of
    time within subject (pseudo-F, R², p, number of permutations) read from
    `permanova` (row ``test == time_within_subject``). Without `response` every
    subject has one colour and there is no response legend.

    Parameters
    ----------
    data : DataFrame
        :func:`pcoa_arrow_data`.
    axes : DataFrame
        The PCoA's axes table (empty: the metric was not computed).
    permanova : DataFrame
        The metric's PERMANOVA table.
    settings : PcoaView, optional
    centroids : DataFrame, optional
        :func:`pcoa_centroids` of `data` (computed when not given).
    **overrides
        Fields of :class:`PcoaView` replaced for this call.

    Returns
    -------
    matplotlib Figure
    """
    view = with_overrides(settings, PcoaView, overrides)
    if axes.empty:
        return _not_computed_figure(view)
    from matplotlib import patheffects

    pre, post, response = view.pre, view.post, view.response

    if centroids is None:
        centroids = pcoa_centroids(data, pre, post)
    levels, colours = _levels_and_colours(view.style, response)
    fig, ax = plt.subplots(figsize=figure_size(view.style, "single", 1.1))
    for level in levels:
        part = data[data["response"] == level]
        if part.empty:
            continue
        before = part[part["timepoint"] == pre]
        after = part[part["timepoint"] == post]
        ax.scatter(before["x"], before["y"], s=9, facecolors="white", edgecolors=colours[level], lw=0.6,
                   alpha=0.6, zorder=3)
        ax.scatter(after["x"], after["y"], s=9, color=colours[level], lw=0, alpha=0.6, zorder=3)
        paired = part[part["paired"]]
        start = paired[paired["timepoint"] == pre].set_index("subject_id")
        end = paired[paired["timepoint"] == post].set_index("subject_id").reindex(start.index)
        for (x0, y0), (x1, y1) in zip(start[["x", "y"]].to_numpy(), end[["x", "y"]].to_numpy()):
            arrow = ax.annotate("", xy=(x1, y1), xytext=(x0, y0), zorder=2,
                                arrowprops={"arrowstyle": "-|>", "color": colours[level], **SUBJECT_ARROW,
                                            "shrinkA": 2, "shrinkB": 2})
            arrow.set_gid("subject-arrow")
    halo = [patheffects.Stroke(linewidth=CENTROID_ARROW["lw"] + 1.6, foreground="white"), patheffects.Normal()]
    for level in levels:
        group = centroids[centroids["response"] == level].set_index("timepoint")
        if pre not in group.index or post not in group.index:
            continue
        (x0, y0), (x1, y1) = group.loc[pre, ["x", "y"]].to_numpy(float), group.loc[post, ["x", "y"]].to_numpy(float)
        arrow = ax.annotate("", xy=(x1, y1), xytext=(x0, y0), zorder=6,
                            arrowprops={"arrowstyle": "-|>", "color": colours[level], **CENTROID_ARROW,
                                        "shrinkA": 0, "shrinkB": 0})
        arrow.arrow_patch.set_path_effects(halo)
        arrow.set_gid("centroid-arrow")
        ax.scatter([x0], [y0], s=46, facecolors="white", edgecolors=colours[level], lw=2.0, zorder=7)
    _label_pcoa_axes(ax, axes, view.axes_pair)
    rows = permanova
    if view.contrast is not None and "contrast" in rows.columns:
        rows = rows[rows["contrast"] == view.contrast]
    rows = rows[(rows["test"] == "time_within_subject") & (rows["term"] == "timepoint")]
    if len(rows):
        row = rows.iloc[0]
        stat = (f"PERMANOVA time (within subject): pseudo-F = {row['pseudo_f']:.2f}, "
                f"R\u00b2 = {row['r2']:.3f},\n{format_p(row['p_value'])} ({int(row['permutations'])} "
                "permutations)")
    else:
        stat = "PERMANOVA time (within subject): not run (see notes)"
    mark_title(ax.set_title(f"{view.heading()}\n{stat}", fontsize=plt.rcParams["font.size"]))
    # two legends under the axis: what the colours mean, and what the symbols and arrows mean
    responses = [Line2D([], [], color=colours[level], marker="o", lw=0.8, ms=3.5, label=RESPONSE_LABELS[level])
                 for level in levels if (data["response"] == level).any()]
    symbols = [Line2D([], [], ls="", marker="o", ms=3.5, mfc="white", mec="black", label=pre),
               Line2D([], [], ls="", marker="o", ms=3.5, color="black", label=post),
               Line2D([], [], ls="-", marker=">", ms=2.5, lw=SUBJECT_ARROW["lw"], color="black",
                      alpha=0.6, label="one subject"),
               Line2D([], [], ls="-", marker=">", ms=5, lw=CENTROID_ARROW["lw"], color="black",
                      label="group centroid")]
    if response:
        first = ax.legend(handles=responses, loc="upper left", bbox_to_anchor=(-0.02, -0.2), ncol=1,
                          frameon=False, title="Response", alignment="left")
        ax.add_artist(first)
        first.set_clip_on(False)  # add_artist clips to the axes: the saved bbox would cut it
    ax.legend(handles=symbols, loc="upper left", bbox_to_anchor=(0.5 if response else -0.02, -0.2), ncol=1,
              frameon=False, title="Sample (arrow: pre \u2192 post)", alignment="left")
    _finish_pcoa(fig, ax)
    return fig


# ---------------------------------------------------------------------------
# within-subject shift


def shift_plot_data(shifts: list[pd.DataFrame], contrast: str | None = None, response: bool = True) -> pd.DataFrame:
    """The per-subject shift tables of all metrics stacked (the data of the shift figure)."""
    table = pd.concat(shifts, ignore_index=True) if shifts else pd.DataFrame()
    if contrast is not None and "contrast" in table.columns:
        table = table[table["contrast"] == contrast]
    columns = ["metric", "subject_id", "cohort", "response", "pre_sample", "post_sample", "distance",
               "median_between_distance"]
    if table.empty:
        return pd.DataFrame(columns=columns)
    table = table.assign(response=_response_key(table["response"], response))
    return table[columns].reset_index(drop=True)


def _offsets(n: int, width: float = 0.28) -> np.ndarray:
    """Deterministic horizontal spread for a strip of n points (no random jitter)."""
    if n <= 1:
        return np.zeros(n)
    return np.linspace(-width / 2, width / 2, n)[np.argsort(np.arange(n) * 7 % n)]


def plot_shift(data: pd.DataFrame, tests: pd.DataFrame, metrics, style: dict, title: str = "",
               contrast: str | None = None, response: bool = True):
    """Box and strip plot of each subject's pre→post distance by response, one panel per metric.

    Each panel gives the Mann–Whitney test (responders vs non-responders) and the
    Hodges–Lehmann shift read from `tests` (``test == responder_vs_non_responder``).
    Without `response`: one box of all subjects and the Wilcoxon test of
    within- against between-subject distance (``test == within_vs_between``).

    Returns
    -------
    matplotlib Figure
    """
    if contrast is not None and "contrast" in tests.columns:
        tests = tests[tests["contrast"] == contrast]
    metrics = [m for m in metrics if m in set(data["metric"])] or list(metrics)
    all_levels, colours = _levels_and_colours(style, response)
    levels = [lv for lv in all_levels if (data["response"] == lv).any()]
    width, _ = figure_size(style, "double")
    n_cols = min(4, len(metrics))
    n_rows = math.ceil(len(metrics) / n_cols)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(width, 2.5 * n_rows + 0.5), squeeze=False)
    font = plt.rcParams["font.size"] - 1.5
    for k, metric in enumerate(metrics):
        ax = axes[k // n_cols, k % n_cols]
        rows = data[data["metric"] == metric]
        groups = [rows.loc[rows["response"] == lv, "distance"].to_numpy(float) for lv in levels]
        positions = np.arange(len(levels))
        boxes = ax.boxplot([g if len(g) else [np.nan] for g in groups], positions=positions, widths=0.55,
                           showfliers=False, patch_artist=True, medianprops={"color": "black", "lw": 1})
        for patch, lv in zip(boxes["boxes"], levels):
            patch.set_facecolor("none")
            patch.set_edgecolor(colours[lv])
        for pos, lv, values in zip(positions, levels, groups):
            ax.scatter(pos + _offsets(len(values)), np.sort(values), s=8, color=colours[lv], alpha=0.8,
                       lw=0, zorder=3)
        ax.set_xticks(positions)
        ax.set_xticklabels([f"{RESPONSE_SHORT[lv]}\nn = {len(g)}" for lv, g in zip(levels, groups)])
        ax.set_title(BETA_LABELS.get(metric, metric))
        test = "responder_vs_non_responder" if response else "within_vs_between"
        hit = tests[(tests["metric"] == metric) & (tests["test"] == test)]
        if len(hit) and response:
            row = hit.iloc[0]
            text = f"Mann\u2013Whitney {format_p(row['p_value'])}\nHL shift R \u2212 NR {_number(row['estimate'])}"
        elif len(hit):
            row = hit.iloc[0]
            text = (f"within vs between subjects: Wilcoxon {format_p(row['p_value'])}\n"
                    f"HL within \u2212 between {_number(row['estimate'])}")
        elif response:
            text = "Mann\u2013Whitney: not tested"
        else:
            text = "not tested"
        values = rows["distance"].to_numpy(float)
        if values.size:
            low, high = float(np.nanmin(values)), float(np.nanmax(values))
            span = (high - low) or max(abs(high), 1.0) * 0.1
            ax.set_ylim(max(0.0, low - 0.1 * span), high + 0.35 * span)
        ax.text(0.03, 0.98, text, transform=ax.transAxes, va="top", ha="left", fontsize=font)
        if k % n_cols == 0:
            ax.set_ylabel("Distance pre \u2192 post (same subject)")
    for k in range(len(metrics), n_rows * n_cols):
        axes[k // n_cols, k % n_cols].set_visible(False)
    handles = [Line2D([], [], ls="", marker="o", ms=3.5, color=colours[lv],
                      label=f"{RESPONSE_SHORT[lv]} = {RESPONSE_LABELS[lv].lower()}") for lv in levels if response]
    if handles:
        fig.legend(handles=handles, loc="lower center", ncol=len(handles), frameon=False,
                   bbox_to_anchor=(0.5, -0.01))
    if title:
        fig.suptitle(title, fontsize=plt.rcParams["axes.titlesize"])
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return fig


# ---------------------------------------------------------------------------
# PCoA of the baseline samples (baseline-only studies)


def pcoa_baseline_data(coordinates: pd.DataFrame, axes_pair, baseline: str, response: bool = True) -> pd.DataFrame:
    """Coordinates of the baseline samples on two axes with their cohort and response.

    Returns
    -------
    DataFrame
        ``sample_id, subject_id, cohort, response, x, y`` sorted by sample (empty
        when the coordinates lack the axes, i.e. the metric was not computed).
    """
    x_name, y_name = (f"PC{a}" for a in axes_pair)
    columns = ["sample_id", "subject_id", "cohort", "response", "x", "y"]
    if x_name not in coordinates.columns or y_name not in coordinates.columns:
        return pd.DataFrame(columns=columns)
    rows = coordinates[coordinates["timepoint"].astype(str) == baseline]
    out = pd.DataFrame({"sample_id": rows["sample_id"].astype(str), "subject_id": rows["subject_id"].astype(str),
                        "cohort": rows["cohort"].fillna("").astype(str),
                        "response": _response_key(rows["response"], response),
                        "x": rows[x_name].astype(float), "y": rows[y_name].astype(float)}, columns=columns)
    return out.sort_values("sample_id", kind="stable").reset_index(drop=True)


def _label_pcoa_axes(ax, axes: pd.DataFrame, axes_pair) -> None:
    """``PC1 (20.3% of variance)`` on each axis, from the PCoA's ``percent_explained``."""
    percent = axes.set_index("axis")["percent_explained"]
    for setter, a in ((ax.set_xlabel, axes_pair[0]), (ax.set_ylabel, axes_pair[1])):
        value = percent.get(f"PC{a}", np.nan)
        setter(f"PC{a} ({value:.1f}% of variance)" if np.isfinite(value) else f"PC{a}")


def plot_pcoa_baseline(data: pd.DataFrame, axes: pd.DataFrame, permanova: pd.DataFrame,
                       settings: PcoaView | None = None, **overrides):
    """PCoA of the baseline samples coloured by response, with the baseline PERMANOVA.

    The title gives ``response_at_baseline`` (free permutations) and, when run,
    ``response_within_cohort`` (permutations within cohort) read from `permanova`
    (rows of contrast ``baseline``). `data` is :func:`pcoa_baseline_data`; the other
    arguments are those of :func:`plot_pcoa_arrows`.

    Returns
    -------
    matplotlib Figure
    """
    view = with_overrides(settings, PcoaView, overrides)
    response = view.response
    if axes.empty:
        return _not_computed_figure(view)
    levels, colours = _levels_and_colours(view.style, response)
    fig, ax = plt.subplots(figsize=figure_size(view.style, "single", 1.1))
    for level in levels:
        part = data[data["response"] == level]
        if len(part):
            ax.scatter(part["x"], part["y"], s=10, color=colours[level], lw=0, alpha=0.8, zorder=3,
                       label=f"{RESPONSE_LABELS[level]} (n = {len(part)})")
    _label_pcoa_axes(ax, axes, view.axes_pair)
    rows = permanova[permanova["term"] == "response"] if "term" in permanova.columns else permanova.iloc[:0]
    stats = []
    for test, label in (("response_at_baseline", "response"), ("response_within_cohort", "within cohort")):
        hit = rows[rows["test"] == test]
        if len(hit):
            row = hit.iloc[0]
            stats.append(f"PERMANOVA {label}: R\u00b2 = {row['r2']:.3f}, {format_p(row['p_value'])}")
    text = "\n".join(stats) if stats else ("PERMANOVA response: not run (see notes)" if response else "")
    mark_title(ax.set_title(view.heading() + (f"\n{text}" if text else ""), fontsize=plt.rcParams["font.size"]))
    if response and len(data):
        ax.legend(loc="upper left", bbox_to_anchor=(-0.02, -0.2), frameon=False, title="Response",
                  alignment="left")
    _finish_pcoa(fig, ax)
    return fig
