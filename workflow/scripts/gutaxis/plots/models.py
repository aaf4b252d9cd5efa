"""Responder-model figures: ROC curves with the CV band, feature stability, calibration and
Kaplan-Meier curves of the top biomarker.

Each ``*_data`` function selects and orders the rows a figure draws from the result
tables of the models rules (no statistic is computed here) and each ``plot_*``
function draws them and returns the Figure. Only numpy, pandas and matplotlib are
imported, as in the plots environment.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from gutaxis.io.tables import read_tsv
from gutaxis.plots.style import OKABE_ITO, figure_size, mark_title, message_figure, palette

MODEL_LABELS = {"l1_logistic": "L1 logistic", "elastic_net": "Elastic net",
                "random_forest": "Random forest"}
#: the sign of a feature's coefficient, in the response palette's colours: higher in responders
#: takes the responder colour, higher in non-responders (lower in responders) the non-responder one
DIRECTION_LEVELS = {"higher_in_responders": "responder", "lower_in_responders": "non_responder"}
DIRECTION_LABELS = {"higher_in_responders": "higher in responders",
                    "lower_in_responders": "higher in non-responders", "": "no sign (forest)"}
GROUP_COLOURS = {"low": "#0072B2", "high": "#D55E00"}
#: text columns of the models tables the figures read
TEXT = {"feature_set": str, "model": str, "feature": str, "block": str, "annotation": str,
        "direction": str, "group": str, "best": str}
#: the main-figure ROC panel shows the feature sets with the best AUROC, this many
PANEL_SETS = 3


def _format_p(p) -> str:
    if p is None or not np.isfinite(p):
        return "p n/a"
    return f"p = {p:.2g}" if p >= 0.001 else "p < 0.001"


def _ordered(values, preferred: Sequence[str]) -> list[str]:
    values = list(dict.fromkeys(values))
    return [v for v in preferred if v in values] + [v for v in values if v not in preferred]


def direction_colours(style: dict) -> dict[str, str]:
    """Bar colour per coefficient sign, from the response palette (grey: no sign)."""
    colours = palette(style, "response", list(DIRECTION_LEVELS.values()))
    return {**{d: colours[level] for d, level in DIRECTION_LEVELS.items()}, "": "#999999"}


def model_colours(models: Sequence[str]) -> dict[str, str]:
    """One Okabe-Ito colour per estimator, fixed by the estimator's name; not the default
    response colours (green, vermillion), which the stability panel of Figure 5 uses."""
    fixed = {"l1_logistic": OKABE_ITO[0], "elastic_net": OKABE_ITO[1], "random_forest": OKABE_ITO[3]}
    spare = [OKABE_ITO[4], OKABE_ITO[7], OKABE_ITO[6]]
    return {m: fixed.get(m) or spare[i % len(spare)] for i, m in enumerate(models)}


def _grid(n: int, style: dict, ncols: int = 3, panel_aspect: float = 1.0):
    ncols = max(1, min(ncols, n))
    nrows = int(np.ceil(n / ncols))
    width, _ = figure_size(style, "double")
    height = width / ncols * panel_aspect * nrows + 0.35
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, height), squeeze=False)
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    return fig, axes.ravel()[:n]


def _set_panels(data: pd.DataFrame, style: dict):
    """One panel per feature set, one colour per estimator, both in the order of ``data``.

    Returns
    -------
    fig, axes, sets, models, colours
    """
    sets = list(dict.fromkeys(data["feature_set"]))
    models = list(dict.fromkeys(data["model"]))
    fig, axes = _grid(len(sets), style)
    return fig, axes, sets, models, model_colours(models)


def _outer_labels(axes, xlabel: str, ylabel: str, ncols: int = 3) -> None:
    """Axis labels on the left column and on the lowest panel of each column only."""
    n = len(axes)
    for i, ax in enumerate(axes):
        if i % ncols == 0:
            ax.set_ylabel(ylabel)
        if i + ncols >= n:
            ax.set_xlabel(xlabel)
            ax.tick_params(labelbottom=True)


# --------------------------------------------------------------------------- ROC


def roc_data(roc: pd.DataFrame, set_order: Sequence[str] = (), model_order: Sequence[str] = ()) -> pd.DataFrame:
    """ROC grid rows ordered by feature set (config order) and estimator."""
    data = roc.copy()
    sets = _ordered(data["feature_set"], set_order)
    models = _ordered(data["model"], model_order)
    data["_s"] = data["feature_set"].map({s: i for i, s in enumerate(sets)})
    data["_m"] = data["model"].map({m: i for i, m in enumerate(models)})
    return data.sort_values(["_s", "_m", "fpr"], kind="stable").drop(columns=["_s", "_m"]).reset_index(drop=True)


def plot_roc(data: pd.DataFrame, performance: pd.DataFrame, style: dict, conf_level: float = 0.95):
    """One panel per feature set: the mean out-of-fold ROC curve of each estimator over the
    CV repeats with its percentile band, and the chance diagonal."""
    if data.empty:
        return message_figure(style, "No feature set was modelled.")
    fig, axes, sets, models, colours = _set_panels(data, style)
    perf = performance.set_index(["feature_set", "model"])
    for ax, feature_set in zip(axes, sets):
        part = data[data["feature_set"] == feature_set]
        ax.plot([0, 1], [0, 1], color="#BBBBBB", lw=0.7, ls="--", zorder=1)
        lines = []
        for model in models:
            curve = part[part["model"] == model]
            if curve.empty:
                continue
            colour = colours[model]
            ax.fill_between(curve["fpr"], curve["tpr_low"], curve["tpr_high"], color=colour, alpha=0.15,
                            lw=0, zorder=2)
            ax.plot(curve["fpr"], curve["tpr_mean"], color=colour, lw=1.2, zorder=3)
            row = perf.loc[(feature_set, model)] if (feature_set, model) in perf.index else None
            text = MODEL_LABELS.get(model, model)
            if row is not None:
                text += f" {row['auroc_mean']:.2f} [{row['auroc_low']:.2f}, {row['auroc_high']:.2f}]"
                if np.isfinite(row.get("perm_p_value", np.nan)):
                    text += f", {_format_p(row['perm_p_value'])}"
            lines.append((Line2D([], [], color=colour, lw=1.2), text))
        known = feature_set in perf.index.get_level_values(0)
        n = perf.loc[feature_set]["n_subjects"].iloc[0] if known else None
        title = feature_set.replace("_", " ") + (f" (n = {int(n)})" if n is not None else "")
        landmark = perf.loc[feature_set]["landmark_months"].iloc[0] if known and "landmark_months" in perf else np.nan
        if known and str(perf.loc[feature_set].get("on_treatment", pd.Series([""])).iloc[0]).lower() == "true":
            # on-treatment features predict from the landmark, not from treatment start
            title += (f"\non-treatment, landmark {landmark:.1f} mo" if np.isfinite(landmark)
                      else "\non-treatment, no landmark")
        ax.set_title(title)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.0)
        ax.set_aspect("equal")
        legend = ax.legend([h for h, _ in lines], [t for _, t in lines], loc="lower right",
                           frameon=True, framealpha=0.85, edgecolor="none",
                           fontsize=max(5, style["font_size"] - 2.5), handlelength=1.2,
                           borderaxespad=0.2)
        legend.get_frame().set_facecolor("white")
    _outer_labels(axes, "False-positive rate (1 \u2212 specificity)", "True-positive rate (sensitivity)")
    fig.suptitle(f"Out-of-fold ROC curves: mean over CV repeats with {100 * conf_level:g}% band; "
                 "legend: AUROC mean [interval over repeats], permutation p", fontsize=style["font_size"])
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- stability


def stability_data(features: pd.DataFrame, performance: pd.DataFrame, top_n: int = 20) -> pd.DataFrame:
    """The ``top_n`` best-ranked features of the best (feature set, estimator)."""
    best = performance[performance["best"].astype(str).str.lower() == "true"]
    if best.empty:
        return features.iloc[0:0]
    feature_set, model = best.iloc[0]["feature_set"], best.iloc[0]["model"]
    part = features[(features["feature_set"] == feature_set) & (features["model"] == model)
                    & (features["selection_frequency"] > 0)]
    part = part.sort_values("rank", kind="stable").head(int(top_n)).copy()
    part["direction"] = part["direction"].fillna("")
    annotation = part["annotation"].fillna("").astype(str) if "annotation" in part else ""
    feature = part["feature"].astype(str).str.replace(r"^s__", "", regex=True).str.replace("_", " ")
    part["label"] = np.where((annotation != "") & (annotation != part["feature"]) & (part["block"] != "taxa"),
                             annotation + " (" + part["feature"].astype(str) + ")", feature)
    part["label"] = part["block"] + ": " + part["label"]
    return part.reset_index(drop=True)


def plot_stability(data: pd.DataFrame, style: dict):
    """Selection frequency across outer fits (bars coloured by the sign of the coefficient) and
    the mean standardised coefficient, or the forest's permutation importance."""
    if data.empty:
        return message_figure(style, "No feature was selected by the best model.")
    feature_set, model = data["feature_set"].iloc[0], data["model"].iloc[0]
    linear = data["mean_coef"].notna().any()
    width, _ = figure_size(style, "double")
    height = 0.9 + 0.17 * len(data)
    fig, (left, right) = plt.subplots(1, 2, figsize=(width, height), sharey=True,
                                      gridspec_kw={"width_ratios": [1.3, 1]})
    y = np.arange(len(data))[::-1]
    signs = direction_colours(style)
    colours = [signs.get(d, "#999999") for d in data["direction"]]
    left.barh(y, data["selection_frequency"], color=colours, height=0.7)
    if linear:
        for yi, freq, stab in zip(y, data["selection_frequency"], data["sign_stability"]):
            if np.isfinite(stab):
                left.text(min(freq, 1.0) + 0.01, yi, f"{100 * stab:.0f}%", va="center",
                          fontsize=max(5, style["font_size"] - 2))
    left.set_yticks(y)
    left.set_yticklabels(data["label"])
    left.set_xlim(0, 1.15)
    left.set_xticks([0, 0.25, 0.5, 0.75, 1.0])
    left.set_xlabel("Selection frequency" + (" (label: sign stability)" if linear else ""))
    if linear:
        right.barh(y, data["mean_coef"], color=colours, height=0.7)
        right.axvline(0, color="#555555", lw=0.6)
        right.set_xlabel("Mean coefficient (log-odds per SD)")
    else:
        right.barh(y, data["importance_mean"], xerr=data["importance_sd"].fillna(0), color="#999999",
                   height=0.7, error_kw={"lw": 0.6})
        right.axvline(0, color="#555555", lw=0.6)
        right.set_xlabel("Permutation importance (AUROC drop)")
    present = [d for d in DIRECTION_LABELS if d in set(data["direction"])]
    handles = [Patch(color=signs[d], label=DIRECTION_LABELS[d]) for d in present]
    # under the axis: inside it, the legend would cover the labels of the shortest bars
    left.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.6 / height), ncol=len(handles),
                frameon=False, fontsize=max(5, style["font_size"] - 1.5))
    fig.suptitle(f"Feature stability: {feature_set.replace('_', ' ')} / {MODEL_LABELS.get(model, model)} "
                 f"({int(data['n_fits'].iloc[0])} outer fits)", fontsize=style["title_size"])
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- calibration


def calibration_data(calibration: pd.DataFrame, set_order: Sequence[str] = (),
                     model_order: Sequence[str] = ()) -> pd.DataFrame:
    """Calibration bins ordered by feature set and estimator."""
    return roc_data(calibration.rename(columns={"bin": "fpr"}), set_order, model_order).rename(
        columns={"fpr": "bin"})


def plot_calibration(data: pd.DataFrame, style: dict, conf_level: float = 0.95):
    """One panel per feature set: observed responder fraction (Wilson interval) against the mean
    predicted probability in equal-count bins, one line per estimator, and the identity line."""
    if data.empty:
        return message_figure(style, "No feature set was modelled.")
    fig, axes, sets, models, colours = _set_panels(data, style)
    offsets = {m: (i - (len(models) - 1) / 2) * 0.008 for i, m in enumerate(models)}
    for ax, feature_set in zip(axes, sets):
        part = data[data["feature_set"] == feature_set]
        ax.plot([0, 1], [0, 1], color="#BBBBBB", lw=0.7, ls="--")
        for model in models:
            rows = part[part["model"] == model]
            if rows.empty:
                continue
            x = rows["mean_predicted"] + offsets[model]
            err = np.vstack([rows["observed"] - rows["observed_low"], rows["observed_high"] - rows["observed"]])
            ax.errorbar(x, rows["observed"], yerr=err, color=colours[model], marker="o", ms=3, lw=1,
                        elinewidth=0.6, capsize=0)
        ax.set_title(feature_set.replace("_", " "))
        ax.set_xlim(0, 1)
        ax.set_ylim(-0.02, 1.02)
        ax.set_aspect("equal")
    _outer_labels(axes, "Mean predicted probability", "Observed fraction of responders")
    handles = [Line2D([], [], color=colours[m], marker="o", ms=3, lw=1, label=MODEL_LABELS.get(m, m))
               for m in models]
    fig.legend(handles=handles, loc="upper center", ncol=len(handles), frameon=False,
               bbox_to_anchor=(0.5, 1.0))
    fig.suptitle(f"Calibration of out-of-fold probabilities (averaged over repeats; "
                 f"{100 * conf_level:g}% Wilson intervals)", y=1.04, fontsize=style["font_size"])
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- Kaplan-Meier


def km_data(curves: pd.DataFrame, survival: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series | None]:
    """Curves of the top-ranked biomarker and its survival.tsv row."""
    if survival.empty or curves.empty:
        return curves.iloc[0:0], None
    top = survival.sort_values("rank", kind="stable").iloc[0]
    data = curves[curves["feature"].astype(str) == str(top["feature"])].copy()
    return data.reset_index(drop=True), top


def _steps(curve: pd.DataFrame, column: str):
    return np.repeat(curve["time"].to_numpy(), 2)[1:], np.repeat(curve[column].to_numpy(), 2)[:-1]


def plot_km(data: pd.DataFrame, top: pd.Series | None, style: dict, conf_level: float = 0.95):
    """Kaplan-Meier curves of subjects above and at/below the top biomarker's median, with the
    pointwise band, censor marks, log-rank p and the Cox hazard ratio per SD."""
    if top is None or data.empty:
        return message_figure(style, "No biomarker was tested for time to event.")
    fig, ax = plt.subplots(figsize=figure_size(style, "single", 0.8))
    handles = []
    for group in ("low", "high"):
        curve = data[data["group"] == group].sort_values("time", kind="stable")
        if curve.empty:
            continue
        colour = GROUP_COLOURS[group]
        x, s = _steps(curve, "survival")
        _, lo = _steps(curve, "ci_low")
        _, hi = _steps(curve, "ci_high")
        ax.fill_between(x, lo, hi, step=None, color=colour, alpha=0.12, lw=0)
        ax.plot(x, s, color=colour, lw=1.2)
        censored = curve[curve["n_censor"] > 0]
        ax.plot(censored["time"], censored["survival"], "|", color=colour, ms=5, mew=0.8)
        n = int(top.get(f"n_{group}", 0))
        median = top.get(f"median_{group}", np.nan)
        text = f"{'above' if group == 'high' else 'at/below'} median (n = {n}; median "
        text += f"{median:.1f} mo)" if np.isfinite(median) else "not reached)"
        handles.append(Line2D([], [], color=colour, lw=1.2, label=text))
    feature = str(top["feature"])
    annotation = str(top.get("annotation") or "") if pd.notna(top.get("annotation")) else ""
    if feature.startswith(("s__", "g__", "f__")):
        name = feature[3:].replace("_", " ")
    elif annotation and annotation != feature:
        name = f"{annotation} ({feature})"
    else:
        name = feature
    ax.set_ylim(0, 1.02)
    ax.set_xlim(left=0)
    ax.set_xlabel(f"Time (months), {top['endpoint']}")
    ax.set_ylabel(f"{top['endpoint']}-free probability")
    hr = top.get("hr_per_sd", np.nan)
    stats = [f"log-rank {_format_p(top.get('logrank_p', np.nan))}"]
    if np.isfinite(hr):
        stats.append(f"Cox HR per SD {hr:.2f} [{top['hr_ci_low']:.2f}, {top['hr_ci_high']:.2f}], "
                     f"{_format_p(top.get('p_value', np.nan))} (adj. {top.get('covariates', '')})")
    ax.text(0.98, 0.98, "\n".join(stats), transform=ax.transAxes, ha="right", va="top",
            fontsize=max(5, style["font_size"] - 1.5))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(0.0, -0.2), frameon=False,
              fontsize=max(5, style["font_size"] - 1.5), title="Biomarker", alignment="left")
    mark_title(ax.set_title(f"{top['block']}: {name}\nsplit at the median ({top['feature_set']}, rank {int(top['rank'])}); "
                 "exploratory", fontsize=style["font_size"]))
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- the plot rules
# Each function below draws the figure of one plot rule from the rule's input paths and params
# (attribute namespaces, as Snakemake passes them) and returns it with its source data.


def roc_figure(inputs, params):
    data = roc_data(read_tsv(inputs.roc, dtype=TEXT), params.set_order, params.model_order)
    return plot_roc(data, read_tsv(inputs.performance, dtype=TEXT), params.style, params.conf_level), data


def roc_panel(inputs, params):
    """The main-figure panel: the :data:`PANEL_SETS` feature sets with the best AUROC, in config order."""
    data = roc_data(read_tsv(inputs.roc, dtype=TEXT), params.set_order, params.model_order)
    performance = read_tsv(inputs.performance, dtype=TEXT)
    best = set(performance.groupby("feature_set")["auroc_mean"].max().nlargest(PANEL_SETS).index)
    part = data[data["feature_set"].isin(best)].reset_index(drop=True)
    return plot_roc(part, performance, params.style, params.conf_level), part


def stability_figure(inputs, params):
    data = stability_data(read_tsv(inputs.features, dtype=TEXT), read_tsv(inputs.performance, dtype=TEXT),
                          params.top_n)
    return plot_stability(data, params.style), data


def calibration_figure(inputs, params):
    data = calibration_data(read_tsv(inputs.calibration, dtype=TEXT), params.set_order, params.model_order)
    return plot_calibration(data, params.style, params.conf_level), data


def km_figure(inputs, params):
    data, top = km_data(read_tsv(inputs.curves, dtype=TEXT), read_tsv(inputs.survival, dtype=TEXT))
    return plot_km(data, top, params.style, params.conf_level), data


#: the figure function of each plot rule (its ``params.figure``) and of its main-figure panel
FIGURES = {"roc": roc_figure, "stability": stability_figure, "calibration": calibration_figure, "km": km_figure}
PANELS = {"roc": roc_panel}


def models_figures(inputs, params, panel: bool = False) -> Iterator[tuple[str, object, pd.DataFrame]]:
    """The figures of one responder-model plot rule, drawn one at a time.

    Parameters
    ----------
    inputs, params
        The rule's input paths and params (``figure`` picks the entry of :data:`FIGURES`,
        ``style`` and the figure's own), as attributes.
    panel : bool
        Also draw the figure's main-figure panel (:data:`PANELS`).

    Yields
    ------
    (output, Figure, DataFrame)
        The rule output the figure goes to (``figures`` or ``panel``), the figure and its
        source data.
    """
    if params.figure not in FIGURES:
        raise ValueError(f"unknown figure {params.figure!r}")
    yield ("figures", *FIGURES[params.figure](inputs, params))
    if panel and params.figure in PANELS:
        yield ("panel", *PANELS[params.figure](inputs, params))
