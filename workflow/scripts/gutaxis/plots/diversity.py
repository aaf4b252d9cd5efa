"""Diversity figures: paired α lines, PCoA with within-subject arrows, within-subject shift by response.

Every function takes the result tables of the diversity rules and draws them; test
results are read from the tables, never recomputed. Imports only numpy, pandas
and matplotlib (the plots environment).
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from gutaxis.style import figure_size, mark_title, paired_lines, palette

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
    if p is None or not np.isfinite(float(p)):
        return "p = NA"
    p = float(p)
    if p >= 0.1:
        return f"p = {p:.2f}"
    return f"p = {p:.3f}" if p >= 0.001 else f"p = {p:.1e}".replace("-", "\u2212")


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


def _test_line(test: pd.Series | None, label: str, split: bool = False) -> str:
    """``R: Δ +0.21 [0.05, 0.40] p = 0.003`` from one row of alpha_tests.tsv (p on a new line with `split`)."""
    prefix = f"{label}: " if label else ""
    if test is None or int(test["n_pairs"]) == 0:
        return f"{prefix}no pairs"
    if not np.isfinite(float(test["p_value"])):
        return f"{prefix}no change (n = {int(test['n_pairs'])})"
    return (f"{prefix}\u0394 {_number(test['hl_estimate'])} [{_number(test['ci_low'], sign=False)}, "
            f"{_number(test['ci_high'], sign=False)}]" + ("\n" if split else " ") + format_p(test["p_value"]))


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
                             lw=0.7, alpha=0.75, ms=2.2)
            if column == "all":
                lines = [(_test_line(find(metric, "overall", "all"), "All"), "black")]
                for level, short in (("responder", "R"), ("non_responder", "NR")) if response else ():
                    lines.append((_test_line(find(metric, "response", level), short), colours[level]))
                n = len(panel)
                ax.set_title(f"All subjects (n = {n})")
            else:
                lines = [(text, "black") for text in
                         _test_line(find(metric, "cohort", column), "", split=True).split("\n")]
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
    if handles:
        fig.legend(handles=handles, loc="lower center", ncol=len(handles), frameon=False,
                   bbox_to_anchor=(0.5, -0.01))
    fig.suptitle(title + ("\n" if title else "") + "Wilcoxon signed-rank on post \u2212 pre; "
                 "\u0394 = Hodges\u2013Lehmann estimate [CI]", fontsize=plt.rcParams["axes.titlesize"])
    fig.tight_layout(rect=(0, 0.04, 1, 1))
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


def _not_computed_figure(style: dict, metric: str, title: str):
    """A figure that says the metric was not computed (undefined for some sample pairs)."""
    fig, ax = plt.subplots(figsize=figure_size(style, "single", 1.1))
    ax.axis("off")
    label = BETA_LABELS.get(metric, metric)
    ax.text(0.5, 0.5, f"{label}: not computed\n(undefined for some sample pairs;\nsee beta_metrics.tsv)",
            ha="center", va="center", transform=ax.transAxes)
    mark_title(ax.set_title(f"{label} PCoA{(', ' + title) if title else ''}", fontsize=plt.rcParams["font.size"]))
    return fig


def plot_pcoa_arrows(data: pd.DataFrame, axes: pd.DataFrame, permanova: pd.DataFrame, axes_pair,
                     metric: str, pre: str, post: str, style: dict, title: str = "", contrast: str | None = None,
                     response: bool = True):
    """PCoA of the pre and post samples with an arrow from each subject's pre to its post sample.

    The title gives the PERMANOVA of time within subject (pseudo-F, R², p, number
    of permutations) read from `permanova` (row ``test == time_within_subject``).
    Without `response` every subject has one colour and there is no response legend.

    Returns
    -------
    matplotlib Figure
    """
    if axes.empty:
        return _not_computed_figure(style, metric, title)
    levels, colours = _levels_and_colours(style, response)
    fig, ax = plt.subplots(figsize=figure_size(style, "single", 1.1))
    for level in levels:
        part = data[data["response"] == level]
        if part.empty:
            continue
        before = part[part["timepoint"] == pre]
        after = part[part["timepoint"] == post]
        ax.scatter(before["x"], before["y"], s=12, facecolors="white", edgecolors=colours[level], lw=0.8,
                   zorder=3)
        ax.scatter(after["x"], after["y"], s=12, color=colours[level], lw=0, zorder=3)
        paired = part[part["paired"]]
        start = paired[paired["timepoint"] == pre].set_index("subject_id")
        end = paired[paired["timepoint"] == post].set_index("subject_id").reindex(start.index)
        for (x0, y0), (x1, y1) in zip(start[["x", "y"]].to_numpy(), end[["x", "y"]].to_numpy()):
            ax.annotate("", xy=(x1, y1), xytext=(x0, y0), zorder=2,
                        arrowprops={"arrowstyle": "-|>", "color": colours[level], "lw": 0.6, "alpha": 0.7,
                                    "mutation_scale": 6, "shrinkA": 2, "shrinkB": 2})
    _label_pcoa_axes(ax, axes, axes_pair)
    rows = permanova
    if contrast is not None and "contrast" in rows.columns:
        rows = rows[rows["contrast"] == contrast]
    rows = rows[(rows["test"] == "time_within_subject") & (rows["term"] == "timepoint")]
    if len(rows):
        row = rows.iloc[0]
        stat = (f"PERMANOVA time (within subject): pseudo-F = {row['pseudo_f']:.2f}, "
                f"R\u00b2 = {row['r2']:.3f},\n{format_p(row['p_value'])} ({int(row['permutations'])} "
                "permutations)")
    else:
        stat = "PERMANOVA time (within subject): not run (see notes)"
    label = BETA_LABELS.get(metric, metric)
    mark_title(ax.set_title(f"{label} PCoA{(', ' + title) if title else ''}\n{stat}",
                            fontsize=plt.rcParams["font.size"]))
    # two legends under the axis: what the colours mean, and what the symbols and arrows mean
    responses = [Line2D([], [], color=colours[level], marker="o", lw=0.8, ms=3.5, label=RESPONSE_LABELS[level])
                 for level in levels if (data["response"] == level).any()]
    symbols = [Line2D([], [], ls="", marker="o", ms=3.5, mfc="white", mec="black", label=pre),
               Line2D([], [], ls="", marker="o", ms=3.5, color="black", label=post),
               Line2D([], [], ls="-", marker=">", ms=3, lw=0.8, color="black", label="same subject")]
    if response:
        first = ax.legend(handles=responses, loc="upper left", bbox_to_anchor=(-0.02, -0.2), ncol=1,
                          frameon=False, title="Response", alignment="left")
        ax.add_artist(first)
        first.set_clip_on(False)  # add_artist clips to the axes: the saved bbox would cut it
    ax.legend(handles=symbols, loc="upper left", bbox_to_anchor=(0.5 if response else -0.02, -0.2), ncol=1,
              frameon=False, title="Sample (arrow: pre \u2192 post)", alignment="left")
    ax.xaxis.set_major_locator(MaxNLocator(5))
    ax.yaxis.set_major_locator(MaxNLocator(6))
    ax.axhline(0, color="#DDDDDD", lw=0.5, zorder=0)
    ax.axvline(0, color="#DDDDDD", lw=0.5, zorder=0)
    fig.tight_layout()
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


def plot_pcoa_baseline(data: pd.DataFrame, axes: pd.DataFrame, permanova: pd.DataFrame, axes_pair, metric: str,
                       style: dict, title: str = "", response: bool = True):
    """PCoA of the baseline samples coloured by response, with the baseline PERMANOVA.

    The title gives ``response_at_baseline`` (free permutations) and, when run,
    ``response_within_cohort`` (permutations within cohort) read from `permanova`
    (rows of contrast ``baseline``).

    Returns
    -------
    matplotlib Figure
    """
    if axes.empty:
        return _not_computed_figure(style, metric, title)
    levels, colours = _levels_and_colours(style, response)
    fig, ax = plt.subplots(figsize=figure_size(style, "single", 1.1))
    for level in levels:
        part = data[data["response"] == level]
        if len(part):
            ax.scatter(part["x"], part["y"], s=10, color=colours[level], lw=0, alpha=0.8, zorder=3,
                       label=f"{RESPONSE_LABELS[level]} (n = {len(part)})")
    _label_pcoa_axes(ax, axes, axes_pair)
    rows = permanova[permanova["term"] == "response"] if "term" in permanova.columns else permanova.iloc[:0]
    stats = []
    for test, label in (("response_at_baseline", "response"), ("response_within_cohort", "within cohort")):
        hit = rows[rows["test"] == test]
        if len(hit):
            row = hit.iloc[0]
            stats.append(f"PERMANOVA {label}: R\u00b2 = {row['r2']:.3f}, {format_p(row['p_value'])}")
    label = BETA_LABELS.get(metric, metric)
    text = "\n".join(stats) if stats else ("PERMANOVA response: not run (see notes)" if response else "")
    mark_title(ax.set_title(f"{label} PCoA{(', ' + title) if title else ''}" + (f"\n{text}" if text else ""),
                            fontsize=plt.rcParams["font.size"]))
    if response and len(data):
        ax.legend(loc="upper left", bbox_to_anchor=(-0.02, -0.2), frameon=False, title="Response",
                  alignment="left")
    ax.xaxis.set_major_locator(MaxNLocator(5))
    ax.yaxis.set_major_locator(MaxNLocator(6))
    ax.axhline(0, color="#DDDDDD", lw=0.5, zorder=0)
    ax.axvline(0, color="#DDDDDD", lw=0.5, zorder=0)
    fig.tight_layout()
    return fig
