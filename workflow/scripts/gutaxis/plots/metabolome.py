"""Metabolomics QC figures: PCA before/after, QC RSD, missingness, total signal in run order.

Each ``*_data`` function selects, joins and orders the rows one figure draws (the
statistics - PCA scores, dispersion ratios, RSDs, missing fractions, total signals -
come from the tables of the ``process_metabolome`` rule; nothing is estimated here)
and each ``plot_*`` function draws them and returns the Figure.  Every figure uses the
same encoding: colour = batch, marker = sample type (circle study sample, black-edged
diamond QC pool, square blank).  Only numpy, pandas and matplotlib are imported, as in
the plots environment.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.legend_handler import HandlerTuple
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from gutaxis.plots.style import figure_size, mark_title, palette

#: sample types that are not study samples (the study types are stool, blood, tissue)
TECHNICAL_TYPES = ("qc", "blank")
#: display group of each injection kind, in legend order
KIND_LABELS = {"study": "Study sample", "qc": "QC pool", "blank": "Blank"}
KIND_MARKERS = {"study": "o", "qc": "D", "blank": "s"}
KIND_SIZES = {"study": 14, "qc": 30, "blank": 22}
NO_BATCH = "none"
#: batches beyond this many share a short repeating colour cycle (and one legend entry)
MAX_BATCH_COLOURS = 8
CYCLE_COLOURS = ("#0072B2", "#E69F00", "#009E73")
BOTTOM_LEGEND_COLUMNS = 6
#: the per-feature missingness histogram switches to a log count axis above this many features
LOG_COUNT_AXIS_ABOVE = 50
FATE_ORDER = ("kept", "dropped: missingness", "dropped: other filter")
FATE_COLOURS = {"kept": "#0072B2", "dropped: missingness": "#D55E00", "dropped: other filter": "#BBBBBB"}
STAGE_COLOURS = {"before": "#999999", "after": "#0072B2"}
THRESHOLD_COLOUR = "#D55E00"
NORMALISATION_NAMES = {"pqn": " and PQN-normalised", "total_signal": " and total-signal normalised",
                       "median": " and median-normalised"}


# --------------------------------------------------------------------------- shared helpers


def injection_kind(sample_type: pd.Series) -> pd.Series:
    """``qc``, ``blank`` or ``study`` for each sample type."""
    t = sample_type.astype(str)
    return t.where(t.isin(TECHNICAL_TYPES), "study")


def _sheet_columns(samples: pd.DataFrame | None, ids: pd.Series) -> pd.DataFrame:
    """batch (text, ``none`` when absent) and injection_order (float) for ``ids``."""
    out = pd.DataFrame(index=ids.astype(str).to_numpy())
    if samples is None:
        sheet = pd.DataFrame(index=out.index)
    else:
        sheet = samples.copy()
        if "sample_id" in sheet.columns:
            sheet = sheet.set_index("sample_id")
        sheet.index = sheet.index.astype(str)
        sheet = sheet[~sheet.index.duplicated()].reindex(out.index)
    batch = sheet["batch"] if "batch" in sheet.columns else pd.Series(np.nan, index=out.index)
    batch = batch.astype(object).where(batch.notna() & (batch.astype(str).str.strip() != ""), NO_BATCH)
    out["batch"] = batch.astype(str).to_numpy()
    order = sheet["injection_order"] if "injection_order" in sheet.columns else pd.Series(np.nan, index=out.index)
    out["injection_order"] = pd.to_numeric(order.replace("", np.nan), errors="coerce").to_numpy(dtype=float)
    return out


def run_position(injection_order: pd.Series) -> np.ndarray:
    """x position in run order: the declared injection order, else 1..n in table order."""
    order = pd.to_numeric(injection_order, errors="coerce").to_numpy(dtype=float)
    if len(order) and np.isfinite(order).all():
        return order
    return np.arange(1, len(order) + 1, dtype=float)


def batch_levels(batches: Sequence[str]) -> list[str]:
    """Batch labels in natural order (B2 before B10), without the no-batch label."""
    levels = {str(b) for b in batches} - {NO_BATCH}
    return sorted(levels, key=lambda b: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", b)])


def batch_colours(style: dict, batches: Sequence[str]) -> dict[str, str]:
    """Colour per batch; grey for injections without a batch.

    Up to :data:`MAX_BATCH_COLOURS` batches get distinct Okabe-Ito colours; more
    batches cycle through three colours in batch order, so neighbouring batches in
    the run still differ.
    """
    levels = batch_levels(batches)
    if len(levels) <= MAX_BATCH_COLOURS:
        colours = palette(style, "batch", levels)
    else:
        colours = {b: CYCLE_COLOURS[i % len(CYCLE_COLOURS)] for i, b in enumerate(levels)}
    colours[NO_BATCH] = "#555555"
    return colours


def _marker_scale(n_points: int) -> float:
    """Marker-area factor: 1 up to ~300 points, smaller for crowded panels (min 0.15)."""
    return float(np.clip(300.0 / max(n_points, 1), 0.15, 1.0))


def _scatter_by_kind(ax, data: pd.DataFrame, x: str, y: str, colours: dict[str, str]) -> None:
    """Scatter with colour = batch and marker = injection kind; QC pools on top, black-edged."""
    scale = _marker_scale(len(data))
    for kind in ("blank", "study", "qc"):
        rows = data[data["kind"] == kind]
        if rows.empty:
            continue
        ax.scatter(
            rows[x], rows[y], s=KIND_SIZES[kind] * scale, marker=KIND_MARKERS[kind],
            c=[colours[b] for b in rows["batch"]],
            edgecolors="black" if kind == "qc" else "none", linewidths=0.8 * np.sqrt(scale) if kind == "qc" else 0,
            alpha=1.0 if kind == "qc" else 0.75, zorder={"blank": 2, "study": 2, "qc": 4}[kind],
        )


def _kind_batch_handles(data: pd.DataFrame, colours: dict[str, str]) -> tuple[list, list[str]]:
    """Legend handles and labels: batches (colour; one entry when colours repeat) and the
    injection kinds present (marker, with their number of injections)."""
    handles = []
    batches = batch_levels(data["batch"])
    if len(batches) > MAX_BATCH_COLOURS:
        handles.append(tuple(Patch(color=c) for c in CYCLE_COLOURS))
        labels = [f"{len(batches)} batches ({batches[0]} ... {batches[-1]}),\ncolours repeat in batch order"]
    else:
        for b in batches:
            handles.append(Patch(color=colours[b]))
        labels = [f"Batch {b}" for b in batches]
    if (data["batch"] == NO_BATCH).any() and batches:
        handles.append(Patch(color=colours[NO_BATCH]))
        labels.append("No batch")
    for kind, label in KIND_LABELS.items():
        n = data.loc[data["kind"] == kind, "sample_id"].nunique()
        if n:
            handles.append(Line2D([], [], linestyle="none", marker=KIND_MARKERS[kind], markersize=5,
                                  markerfacecolor="white" if kind != "qc" else "#777777",
                                  markeredgecolor="black"))
            labels.append(f"{label} (n = {n})")
    return handles, labels


def _encoding_legend(fig, data: pd.DataFrame, colours: dict[str, str], **kwargs) -> None:
    """Figure legend of the batch colours and injection-kind markers."""
    handles, labels = _kind_batch_handles(data, colours)
    fig.legend(handles, labels, frameon=False, handler_map={tuple: HandlerTuple(ndivide=None, pad=0)}, **kwargs)


def _finish_qc_figure(fig, data: pd.DataFrame, colours: dict[str, str], title: str, subject: str,
                      legend_at: str = "outside lower center"):
    """The batch/kind legend (below the panels: one row of :data:`BOTTOM_LEGEND_COLUMNS`) and the
    title ``<title>: <subject>``."""
    columns = {"ncol": BOTTOM_LEGEND_COLUMNS} if legend_at == "outside lower center" else {}
    _encoding_legend(fig, data, colours, loc=legend_at, **columns)
    fig.suptitle(f"{title}: {subject}".lstrip(": "), fontsize=plt.rcParams["axes.titlesize"])
    return fig


def _message(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", wrap=True)
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


# --------------------------------------------------------------------------- PCA before / after


def pca_plot_data(scores: pd.DataFrame, samples: pd.DataFrame | None = None) -> pd.DataFrame:
    """PCA scores (``qc_pca.tsv``) with the injection kind and batch of each row.

    Returns
    -------
    pandas.DataFrame
        stage, sample_id, sample_type, kind, batch, pc1, pc2, pc1_variance_pct,
        pc2_variance_pct; stages in the order before, after.
    """
    out = scores.copy()
    out["sample_id"] = out["sample_id"].astype(str)
    out["kind"] = injection_kind(out["sample_type"]).to_numpy()
    out["batch"] = _sheet_columns(samples, out["sample_id"])["batch"].to_numpy()
    out["_stage"] = out["stage"].map({"before": 0, "after": 1}).fillna(2)
    out = out.sort_values(["_stage", "sample_id"], kind="stable").drop(columns="_stage")
    columns = ["stage", "sample_id", "sample_type", "kind", "batch", "pc1", "pc2",
               "pc1_variance_pct", "pc2_variance_pct"]
    return out[columns].reset_index(drop=True)


def _dispersion_text(dispersion: pd.DataFrame, stage: str) -> str:
    row = dispersion[dispersion["stage"] == stage]
    if row.empty or not np.isfinite(float(row["dispersion_ratio"].iloc[0])):
        return "QC/study dispersion ratio: needs 2 or more QC pools"
    r = row.iloc[0]
    return (f"QC/study dispersion ratio {r['dispersion_ratio']:.2f} (PC1-2: {r['dispersion_ratio_pc12']:.2f})\n"
            f"{int(r['n_features'])} features in the PCA")


def plot_qc_pca(data: pd.DataFrame, dispersion: pd.DataFrame, style: dict, title: str = ""):
    """Two PCA score panels (before, after processing) with QC pools highlighted.

    Parameters
    ----------
    data : pandas.DataFrame
        From :func:`pca_plot_data`.
    dispersion : pandas.DataFrame
        ``qc_dispersion.tsv``: one row per stage with ``dispersion_ratio`` (median QC
        distance to the QC centroid / median study distance to the study centroid,
        autoscaled feature space) and ``dispersion_ratio_pc12``.
    """
    colours = batch_colours(style, data["batch"])
    width, height = figure_size(style, "double", 0.5)
    fig, axes = plt.subplots(1, 2, figsize=(width, height), layout="constrained")
    for ax, stage, name in zip(axes, ("before", "after"), ("Before processing", "After processing")):
        rows = data[data["stage"] == stage]
        if rows.empty or rows["pc1"].isna().all():
            _message(ax, f"{name}: no PCA (too few complete features or samples)")
            continue
        _scatter_by_kind(ax, rows, "pc1", "pc2", colours)
        ax.axhline(0, color="#DDDDDD", lw=0.6, zorder=0)
        ax.axvline(0, color="#DDDDDD", lw=0.6, zorder=0)
        ax.set_xlabel(f"PC1 ({rows['pc1_variance_pct'].iloc[0]:.1f}% of variance)")
        ax.set_ylabel(f"PC2 ({rows['pc2_variance_pct'].iloc[0]:.1f}% of variance)")
        ax.set_title(f"{name}\n{_dispersion_text(dispersion, stage)}", fontsize=plt.rcParams["font.size"])
    return _finish_qc_figure(fig, data, colours, title, "PCA before and after processing")


# --------------------------------------------------------------------------- QC RSD


def rsd_plot_data(rsd: pd.DataFrame) -> pd.DataFrame:
    """QC RSD per feature and stage in percent (``qc_rsd.tsv``; NaN = fewer than 2 QC values).

    Returns
    -------
    pandas.DataFrame
        stage, feature_id, (name,) n_qc, rsd_pct; stages in the order before, after.
    """
    out = rsd.copy()
    out["rsd_pct"] = 100.0 * pd.to_numeric(out["rsd"], errors="coerce")
    out["_stage"] = out["stage"].map({"before": 0, "after": 1}).fillna(2)
    out = out.sort_values(["_stage"], kind="stable").drop(columns="_stage")
    columns = ["stage", "feature_id"] + (["name"] if "name" in out.columns else []) + ["n_qc", "rsd_pct"]
    return out[columns].reset_index(drop=True)


def plot_qc_rsd(data: pd.DataFrame, max_rsd: float, style: dict, enabled: bool = True, title: str = ""):
    """Histogram of the QC-pool RSD of each feature before and after processing.

    "Before": raw QC intensities, every feature; "after": normalised QC values of the
    kept features.  The dashed line is the filter threshold ``max_rsd`` (a fraction);
    features above the upper axis limit are counted in the last bin.
    """
    threshold = 100.0 * float(max_rsd)
    width, height = figure_size(style, "single", 0.8)
    fig, ax = plt.subplots(figsize=(width, height), layout="constrained")
    finite = data["rsd_pct"].dropna()
    if finite.empty:
        _message(ax, "No QC RSD: fewer than two QC-pool injections")
        mark_title(ax.set_title(f"{title}: QC-pool RSD".lstrip(": ")))
        return fig
    upper = max(40.0, 2 * threshold)
    bins = np.linspace(0, upper, 41)
    for stage, label in (("before", "Before (raw)"), ("after", "After processing")):
        values = data.loc[data["stage"] == stage, "rsd_pct"]
        n_missing = int(values.isna().sum())
        values = values.dropna()
        if values.empty:
            continue
        below = int((values < threshold).sum())
        text = f"{label}: {below} of {len(values)} features < {threshold:g}%"
        if n_missing:
            text += f" ({n_missing} with < 2 QC values)"
        clipped = np.clip(values.to_numpy(dtype=float), 0, upper - 1e-9 * upper)
        if stage == "before":
            ax.hist(clipped, bins=bins, color=STAGE_COLOURS[stage], alpha=0.55, label=text)
        else:
            ax.hist(clipped, bins=bins, histtype="step", color=STAGE_COLOURS[stage], lw=1.4, label=text)
    ax.axvline(threshold, color=THRESHOLD_COLOUR, ls="--", lw=1)
    ax.text(threshold, 0.97, f" max RSD {threshold:g}%" + ("" if enabled else " (filter off)"),
            transform=ax.get_xaxis_transform(), color=THRESHOLD_COLOUR, ha="left", va="top")
    ticks = ax.get_xticks()
    ticks = ticks[(ticks >= 0) & (ticks <= upper)]
    ax.set_xticks(ticks)
    ax.set_xticklabels([f"{t:g}" if t < upper else f"\u2265{t:g}" for t in ticks])
    ax.set_xlim(0, upper)
    ax.set_xlabel("RSD over QC-pool injections (%)")
    ax.set_ylabel("Features")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), frameon=False)
    mark_title(ax.set_title(f"{title}: QC-pool RSD".lstrip(": ")))
    return fig


# --------------------------------------------------------------------------- missingness


def missingness_sample_data(per_sample: pd.DataFrame, samples: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per-injection missing fraction (``missingness_samples.tsv``) with batch and run position.

    Returns
    -------
    pandas.DataFrame
        stage, sample_id, sample_type, kind, batch, injection_order, run_position,
        n_features, n_missing, pct_missing; ordered by stage (raw, filtered) then run.
    """
    out = per_sample.copy()
    out["sample_id"] = out["sample_id"].astype(str)
    out["kind"] = injection_kind(out["sample_type"]).to_numpy()
    sheet = _sheet_columns(samples, out["sample_id"])
    out["batch"] = sheet["batch"].to_numpy()
    out["injection_order"] = sheet["injection_order"].to_numpy()
    raw = out[out["stage"] == "raw"]
    position = pd.Series(run_position(raw["injection_order"]), index=raw["sample_id"].to_numpy())
    out["run_position"] = out["sample_id"].map(position).to_numpy(dtype=float)
    out["pct_missing"] = 100.0 * out["fraction_missing"].astype(float)
    out["_stage"] = out["stage"].map({"raw": 0, "filtered": 1}).fillna(2)
    out = out.sort_values(["_stage", "run_position"], kind="stable").drop(columns="_stage")
    columns = ["stage", "sample_id", "sample_type", "kind", "batch", "injection_order", "run_position",
               "n_features", "n_missing", "pct_missing"]
    return out[columns].reset_index(drop=True)


def missingness_feature_data(
    per_feature: pd.DataFrame, dropped_features: pd.DataFrame, sample_set: str = "study samples"
) -> pd.DataFrame:
    """Per-feature missing fraction over ``sample_set`` with each feature's fate.

    Returns
    -------
    pandas.DataFrame
        feature_id, (name,) n_samples, n_missing, pct_missing, fate (``kept``,
        ``dropped: missingness``, ``dropped: other filter``), dropped_step.
    """
    rows = per_feature[per_feature["sample_set"] == sample_set].copy()
    rows["feature_id"] = rows["feature_id"].astype(str)
    step = dropped_features.assign(feature_id=dropped_features["feature_id"].astype(str)).drop_duplicates(
        "feature_id").set_index("feature_id")["step"]
    rows["dropped_step"] = rows["feature_id"].map(step).fillna("").to_numpy()
    rows["fate"] = np.where(rows["dropped_step"] == "", "kept",
                            np.where(rows["dropped_step"] == "missingness", FATE_ORDER[1], FATE_ORDER[2]))
    rows["pct_missing"] = 100.0 * rows["fraction_missing"].astype(float)
    columns = ["feature_id"] + (["name"] if "name" in rows.columns else []) + [
        "n_samples", "n_missing", "pct_missing", "fate", "dropped_step"]
    return rows[columns].reset_index(drop=True)


def plot_missingness(
    samples_data: pd.DataFrame, features_data: pd.DataFrame, missingness: dict, style: dict, title: str = ""
):
    """Missing values per injection (run order) and per feature (histogram by fate).

    Parameters
    ----------
    samples_data, features_data : pandas.DataFrame
        From :func:`missingness_sample_data` and :func:`missingness_feature_data`.
    missingness : dict
        The config's ``metabolome.missingness`` section (threshold line and rule).
    """
    colours = batch_colours(style, samples_data["batch"])
    width, height = figure_size(style, "double", 0.5)
    fig, (ax_s, ax_f) = plt.subplots(1, 2, figsize=(width, height), layout="constrained")
    raw = samples_data[samples_data["stage"] == "raw"]
    filtered = samples_data[samples_data["stage"] == "filtered"]
    _scatter_by_kind(ax_s, raw, "run_position", "pct_missing", colours)
    if not filtered.empty:
        scale = _marker_scale(len(filtered))
        ax_s.scatter(filtered["run_position"], filtered["pct_missing"], s=12 * scale, marker="_", color="black",
                     linewidths=0.8 * np.sqrt(scale), zorder=5)
    n_raw = int(raw["n_features"].iloc[0]) if not raw.empty else 0
    n_filtered = int(filtered["n_features"].iloc[0]) if not filtered.empty else 0
    declared = raw["injection_order"].notna().all() and not raw.empty
    ax_s.set_xlabel("Injection order" if declared else "Injection (table order; no injection_order)")
    ax_s.set_ylabel("Missing values (% of features)")
    ax_s.xaxis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 5, 10]))
    ax_s.set_ylim(-2, 102)
    ax_s.set_title("Per injection", fontsize=plt.rcParams["font.size"])
    handles = [Line2D([], [], linestyle="none", marker="o", markersize=4, color="#777777",
                      label=f"over all {n_raw} features")]
    if not filtered.empty:
        handles.append(Line2D([], [], linestyle="none", marker="_", markersize=7, color="black",
                              label=f"over the {n_filtered} kept features (before imputation)"))
    ax_s.legend(handles=handles, loc="upper right", frameon=False)

    bins = np.linspace(0, 100, 26)
    stacked = [features_data.loc[features_data["fate"] == fate, "pct_missing"].to_numpy(dtype=float)
               for fate in FATE_ORDER]
    labels = [f"{fate} (n = {len(v)})" for fate, v in zip(FATE_ORDER, stacked)]
    ax_f.hist(stacked, bins=bins, stacked=True, color=[FATE_COLOURS[f] for f in FATE_ORDER], label=labels)
    # a log axis keeps the few dropped features visible beside the many kept ones
    log_axis = len(features_data) > LOG_COUNT_AXIS_ABOVE
    if log_axis:
        ax_f.set_yscale("symlog", linthresh=1)
        ax_f.set_ylim(0, None)
        ax_f.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:g}"))
    else:
        ax_f.yaxis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 5, 10]))
    limit = 100.0 * float(missingness.get("max_missing", 0.2))
    rule = "in at least one group" if missingness.get("rule") == "per_group" else "over all study samples"
    if missingness.get("rule") == "per_group":
        rule += f" ({missingness.get('group_column', '')})"
    ax_f.axvline(limit, color=THRESHOLD_COLOUR, ls="--", lw=1)
    ax_f.set_xlabel("Missing values over study samples (%)")
    ax_f.set_ylabel("Features (log scale)" if log_axis else "Features")
    ax_f.set_xlim(0, 100)
    ax_f.set_title("Per feature", fontsize=plt.rcParams["font.size"])
    off = "" if missingness.get("enabled", True) else " (filter off)"
    ax_f.legend(loc="upper right", frameon=False, title=f"Limit (dashed): \u2264 {limit:g}% missing\n{rule}{off}")
    return _finish_qc_figure(fig, raw, colours, title, "missing values")


# --------------------------------------------------------------------------- total signal


def total_signal_data(total: pd.DataFrame) -> pd.DataFrame:
    """Total signal per injection (``total_signal.tsv``) with injection kind and run position.

    Returns
    -------
    pandas.DataFrame
        sample_id, sample_type, kind, batch, injection_order, run_position, n_detected,
        total_signal_raw, total_signal_processed; in run order.
    """
    out = total.copy()
    out["sample_id"] = out["sample_id"].astype(str)
    out["kind"] = injection_kind(out["sample_type"]).to_numpy()
    batch = out["batch"] if "batch" in out.columns else pd.Series(np.nan, index=out.index)
    out["batch"] = batch.astype(object).where(batch.notna() & (batch.astype(str).str.strip() != ""),
                                              NO_BATCH).astype(str)
    out["run_position"] = run_position(out["injection_order"])
    out = out.sort_values("run_position", kind="stable")
    columns = ["sample_id", "sample_type", "kind", "batch", "injection_order", "run_position", "n_detected",
               "total_signal_raw", "total_signal_processed"]
    return out[columns].reset_index(drop=True)


def plot_total_signal(data: pd.DataFrame, style: dict, normalisation: str = "", title: str = ""):
    """Total signal per injection in run order: raw (all features) and processed (kept features).

    Colour = batch, marker = sample type; log10 y axes shared by the two panels, so their
    spreads compare directly.  Blanks have no processed value.
    """
    colours = batch_colours(style, data["batch"])
    width, height = figure_size(style, "double", 0.5)
    fig, (ax_raw, ax_done) = plt.subplots(2, 1, figsize=(width, height), sharex=True, sharey=True,
                                         layout="constrained")
    panels = (
        (ax_raw, "total_signal_raw", "Raw: sum over all features"),
        (ax_done, "total_signal_processed",
         "Processed: sum over the kept features, imputed" + NORMALISATION_NAMES.get(normalisation, "")),
    )
    for ax, column, name in panels:
        rows = data[pd.to_numeric(data[column], errors="coerce") > 0]
        if rows.empty:
            _message(ax, f"{name}: no values")
            continue
        _scatter_by_kind(ax, rows, "run_position", column, colours)
        ax.set_yscale("log")
        ax.set_ylabel("Total signal\n(intensity, log scale)")
        ax.set_title(name, fontsize=plt.rcParams["font.size"], loc="left")
    declared = data["injection_order"].notna().all() and not data.empty
    ax_done.set_xlabel("Injection order" if declared else "Injection (table order; no injection_order)")
    ax_done.xaxis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 5, 10]))
    return _finish_qc_figure(fig, data, colours, title, "total signal per injection in run order",
                             legend_at="outside right center")


__all__ = [
    "pca_plot_data", "plot_qc_pca", "rsd_plot_data", "plot_qc_rsd", "missingness_sample_data",
    "missingness_feature_data", "plot_missingness", "total_signal_data", "plot_total_signal",
    "injection_kind", "run_position", "batch_colours",
]


# ---------------------------------------------------------------------------
# one QC figure of the workflow, chosen by name


def _pca_figure(tables: dict, params):
    data = pca_plot_data(tables["scores"], tables["samples"])
    return plot_qc_pca(data, tables["dispersion"], params["style"], params["title"]), data


def _rsd_figure(tables: dict, params):
    data = rsd_plot_data(tables["rsd"])
    limits = params["qc_rsd"]
    fig = plot_qc_rsd(data, limits["max_rsd"], params["style"], enabled=limits["enabled"], title=params["title"])
    return fig, data


def _missingness_figure(tables: dict, params):
    per_sample = missingness_sample_data(tables["per_sample"], tables["samples"])
    per_feature = missingness_feature_data(tables["per_feature"], tables["dropped"])
    fig = plot_missingness(per_sample, per_feature, params["missingness"], params["style"], params["title"])
    source = pd.concat([per_sample.assign(panel="per injection"), per_feature.assign(panel="per feature")],
                       ignore_index=True)
    return fig, source[["panel"] + [c for c in source.columns if c != "panel"]]


def _total_signal_figure(tables: dict, params):
    data = total_signal_data(tables["total_signal"])
    return plot_total_signal(data, params["style"], params["normalisation"], params["title"]), data


#: figure name (the rule's ``params.figure``) -> builder of (figure, source data)
QC_FIGURES = {"pca": _pca_figure, "rsd": _rsd_figure, "missingness": _missingness_figure,
              "total_signal": _total_signal_figure}


def qc_figure(figure: str, tables: dict, params):
    """One metabolomics QC figure and the table it draws.

    Parameters
    ----------
    figure : {"pca", "rsd", "missingness", "total_signal"}
    tables : dict of DataFrame
        The rule's inputs by name: ``scores, dispersion, samples`` (pca), ``rsd``,
        ``per_sample, per_feature, dropped, samples`` (missingness), ``total_signal``.
    params : mapping
        ``style, title`` and, by figure, ``qc_rsd`` (``max_rsd, enabled``),
        ``missingness`` or ``normalisation`` (the config's ``metabolome`` values).

    Returns
    -------
    (matplotlib Figure, DataFrame)
    """
    return QC_FIGURES[figure](tables, params)
